"""The Graph Refiner Network (GRN): the SRN with a graph encoder over a weighted complete graph."""
import torch
from torch import nn

from srn.graph_encoder import complete_graph
from srn.inner_descent import InnerDescent, descend


class GraphRefiner(nn.Module):
    """Refines the edge weights (and, if ``refine_nodes``, the nodes) of a graph so that
    it encodes to a data embedding z, by the same inner gradient descent as SetRefiner:
    L = sum over the batch of ||encoder(S, W) - z||^2, with ``encoder`` called as
    ``encoder(nodes [B, N, D], edges [B, N, N], mask [B, N] | None) -> [B, E]``.

    The graph starts as the complete graph (weight 1 between distinct real nodes, 0 on
    the diagonal and for padding) unless ``edges0`` is given. After each call
    ``inner_losses`` [steps] holds the inner loss before each step.
    """

    def __init__(
        self,
        encoder: nn.Module,
        steps: int,
        inner_lr: float,
        refine_nodes: bool = True,
        momentum: float = 0.0,
        backprop: str = "unroll",
    ):
        super().__init__()
        InnerDescent(steps, inner_lr, momentum, backprop)  # ValueError for settings outside its declaration
        self.encoder = encoder
        self.steps = steps
        self.inner_lr = inner_lr
        self.refine_nodes = refine_nodes
        self.momentum = momentum
        self.backprop = backprop
        self.inner_losses = torch.zeros(0)

    def forward(
        self,
        s0: torch.Tensor,
        z: torch.Tensor,
        edges0: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """s0 [B, N, D], z [B, E], edges0 [B, N, N] or None, mask [B, N] bool or None
        -> (nodes [B, N, D], edges [B, N, N])."""
        if edges0 is None:
            batch, n, _ = s0.shape
            edges0 = complete_graph(mask, batch, n, s0.device, s0.dtype)
        settings = (self.steps, self.inner_lr, self.momentum, self.backprop)
        if self.refine_nodes:
            (s, edges), self.inner_losses = descend(self._loss, (s0, edges0), (z, mask), *settings)
        else:
            (edges,), self.inner_losses = descend(self._loss_of_edges, (edges0,), (s0, z, mask), *settings)
            s = s0
        return s, edges

    def _loss(self, s, edges, z, mask):
        return (self.encoder(s, edges, mask) - z).pow(2).sum()

    def _loss_of_edges(self, edges, s, z, mask):
        return self._loss(s, edges, z, mask)

    def extra_repr(self) -> str:
        return (
            f"steps={self.steps}, inner_lr={self.inner_lr}, refine_nodes={self.refine_nodes}, "
            f"momentum={self.momentum}, backprop={self.backprop!r}"
        )
