"""The GRN's energy and its gradient in first-order ops: L(V, W) = sum over the batch of
||H_agg(V, W) - z||^2 for H_agg a ``GraphEncoder``, with dL/dW and dL/dV written out by
hand (the message and node MLPs' Linear and ReLU backward, the mean over the messages,
FSPool's weights scattered back through the sort permutation), as ``srn.set_energy`` does
for the SRN: the outer backward through the inner steps is then a first-order backward.
"""
import torch

from srn.fspool import set_sizes
from srn.graph_encoder import GraphEncoder, pair_mask


class GraphEnergy:
    """L, dL/dV and dL/dW for one batch of graphs with one mask and one embedding z.

    Built once per refiner call: FSPool's weight of each rank divided by the set size, the
    pairs that carry a message, and, when only the edges are refined (``nodes`` given),
    the messages themselves, which then depend on nothing the inner steps change.
    """

    def __init__(self, encoder: GraphEncoder, z: torch.Tensor, mask: torch.Tensor | None, n_max: int,
                 nodes: torch.Tensor | None = None, scale: float = 1.0):
        """z [B, E], mask [B, N] bool or None, n_max = N; nodes [B, N, D]: the fixed nodes
        when only the edges are refined (then called with [W]), else None ([V, W]); the
        gradients come out times ``scale``, as ``srn.set_energy.SetEnergy``'s."""
        self.encoder = encoder
        batch = z.shape[0]
        sizes = set_sizes(mask, batch, n_max, z.dtype, z.device)  # [B]
        self.inverse_sizes = (1 / sizes.clamp(min=1))[:, None, None]  # [B, 1, 1]
        self.rank_weights = encoder.pool.rank_weights(sizes, n_max) * self.inverse_sizes  # [B, N, E]
        self.pairs = pair_mask(mask, batch, n_max, z.device).to(z.dtype)  # [B, N, N]
        self.padding = None if mask is None else ~mask.unsqueeze(-1)  # [B, N, 1]
        self.scaled_last = (2 * scale) * encoder.node_mlp[2].weight  # [E, H]
        self.minus_z = -z  # [B, E]
        self.fixed = None if nodes is None else (nodes, *self._messages(nodes))

    def __call__(self, variables: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """[V [B, N, D], W [B, N, N]] -> (L, detached [], scale * (dL/dV, dL/dW)); with
        fixed nodes, [W] -> (L, (scale * dL/dW,))."""
        if self.fixed is None:
            nodes, edges = variables
            pre_relu, messages = self._messages(nodes)
        else:
            (edges,) = variables
            nodes, pre_relu, messages = self.fixed
        node_first, node_hidden, node_last = self.encoder.node_mlp
        weights = edges * self.pairs  # [B, N, N]
        aggregated = (weights.unsqueeze(-1) * messages).sum(dim=2) * self.inverse_sizes  # [B, N, H]
        hidden = torch.relu(node_first(torch.cat([nodes, aggregated], dim=-1)))  # [B, N, H]
        out = node_last(hidden)  # [B, N, E], before the division by the set size
        with torch.no_grad():
            ranked = out if self.padding is None else out.masked_fill(self.padding, float("-inf"))
            order = ranked.argsort(dim=1, descending=True)  # [B, N, E]
        element_weights = self.rank_weights.new_zeros(out.shape).scatter(1, order, self.rank_weights)
        residual = (out * element_weights).sum(dim=1) + self.minus_z  # [B, E]
        with torch.no_grad():
            loss = torch.dot(residual.flatten(), residual.flatten())
        grad_hidden = (element_weights * residual.unsqueeze(1)) @ self.scaled_last  # [B, N, H]
        grad_input = (grad_hidden * (hidden > 0)) @ node_first.weight  # [B, N, D + H]
        grad_nodes, grad_aggregated = grad_input.split([nodes.shape[-1], messages.shape[-1]], dim=-1)
        grad_aggregated = grad_aggregated * self.inverse_sizes  # [B, N, H]: dL/d sum_j w_ij m_ij
        grad_edges = (messages @ grad_aggregated.unsqueeze(-1)).squeeze(-1) * self.pairs  # [B, N, N]
        if self.fixed is not None:
            return loss, (grad_edges,)
        grad_messages = weights.unsqueeze(-1) * grad_aggregated.unsqueeze(2)  # [B, N, N, H]
        grad_pre = (grad_messages @ self.encoder.message_second.weight) * (pre_relu > 0)  # [B, N, N, H]
        w_i, w_j = self.encoder.message_first.weight.split(nodes.shape[-1], dim=1)  # [H, D] each
        grad_nodes = grad_nodes + grad_pre.sum(dim=2) @ w_i + grad_pre.sum(dim=1) @ w_j
        return loss, (grad_nodes, grad_edges)

    def _messages(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """nodes [B, N, D] -> (ReLU of the first message layer [B, N, N, H], messages m_ij [B, N, N, H])."""
        first = self.encoder.message_first
        w_i, w_j = first.weight.split(nodes.shape[-1], dim=1)
        pre = (nodes @ w_i.t()).unsqueeze(2) + (nodes @ w_j.t()).unsqueeze(1) + first.bias
        activated = torch.relu(pre)
        return activated, self.encoder.message_second(activated)
