"""H_agg of the GRN: a permutation-invariant encoder of a weighted graph."""
import torch
from torch import nn

from srn.fspool import FSPool


def pair_mask(mask: torch.Tensor | None, batch: int, n: int, device: torch.device) -> torch.Tensor:
    """[B, N, N] bool: True for pairs (i, j) of real nodes with i != j."""
    pairs = ~torch.eye(n, dtype=torch.bool, device=device).expand(batch, n, n)
    if mask is not None:
        pairs = pairs & mask.unsqueeze(2) & mask.unsqueeze(1)
    return pairs


def complete_graph(mask: torch.Tensor | None, batch: int, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[B, N, N] edge weights of the complete graph: 1 between real nodes, 0 on the diagonal and for padding."""
    return pair_mask(mask, batch, n, device).to(dtype)


class GraphEncoder(nn.Module):
    """One graph-convolution layer in the style of scene-graph convolution (Johnson, Gupta
    and Fei-Fei, 2018), then permutation-invariant pooling.

    Each ordered pair of distinct real nodes sends the message m_ij = w_ij *
    MLP_msg([v_i, v_j]); node i averages its messages over the n real nodes,
    a_i = sum_j m_ij / n, and updates h_i = MLP_node([v_i, a_i]); FSPool over the nodes
    (activations divided by n, as SetEncoder) gives the graph embedding. Self loops and
    padded nodes carry no message, so their edge weights get no gradient.
    """

    def __init__(self, node_dim: int, out_dim: int, hidden: int = 256, n_pieces: int = 20):
        super().__init__()
        self.message_first = nn.Linear(2 * node_dim, hidden)
        self.message_second = nn.Linear(hidden, hidden)
        self.node_mlp = nn.Sequential(
            nn.Linear(node_dim + hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_dim),
        )
        self.pool = FSPool(out_dim, n_pieces)

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """nodes [B, N, D], edges [B, N, N] (w_ij, message j -> i), mask [B, N] bool or None -> [B, out_dim]."""
        batch, n, node_dim = nodes.shape
        # Linear([v_i, v_j]) = W_i v_i + W_j v_j + b, computed per node and broadcast over pairs.
        w_i, w_j = self.message_first.weight.split(node_dim, dim=1)
        pre = (nodes @ w_i.t()).unsqueeze(2) + (nodes @ w_j.t()).unsqueeze(1) + self.message_first.bias
        messages = self.message_second(torch.relu(pre))  # [B, N, N, H]
        weights = edges * pair_mask(mask, batch, n, nodes.device)
        sizes = torch.full((batch,), float(n), device=nodes.device) if mask is None else mask.sum(1).clamp(min=1).float()
        sizes = sizes.to(nodes.dtype)[:, None, None]
        aggregated = (weights.unsqueeze(-1) * messages).sum(dim=2) / sizes  # [B, N, H]
        h = self.node_mlp(torch.cat([nodes, aggregated], dim=-1)) / sizes
        return self.pool(h, mask)
