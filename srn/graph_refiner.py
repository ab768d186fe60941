"""The Graph Refiner Network (GRN): the SRN with a graph encoder over a weighted complete graph."""
import torch
from torch import nn

from srn.graph_encoder import GraphEncoder, complete_graph
from srn.graph_energy import GraphEnergy
from srn import finite_checks
from srn.capture import captured
from srn.inner_descent import InnerDescent, autograd_gradient, descend


class GraphRefiner(nn.Module):
    """Refines the edge weights (and, if ``refine_nodes``, the nodes) of a graph so that
    it encodes to a data embedding z, by the same inner gradient descent as SetRefiner:
    L = sum over the batch of ||encoder(S, W) - z||^2, with ``encoder`` called as
    ``encoder(nodes [B, N, D], edges [B, N, N], mask [B, N] | None) -> [B, E]``.
    gradient: "first-order" (``srn.graph_energy``; needs a ``GraphEncoder``) or "autograd".

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
        gradient: str = "first-order",
    ):
        super().__init__()
        InnerDescent(steps, inner_lr, momentum, backprop, gradient)  # ValueError for settings outside its declaration
        if gradient == "first-order" and not isinstance(encoder, GraphEncoder):
            raise ValueError(f"gradient 'first-order' needs a GraphEncoder, got {type(encoder).__name__} "
                             "(use gradient 'autograd')")
        self.encoder = encoder
        self.steps = steps
        self.inner_lr = inner_lr
        self.refine_nodes = refine_nodes
        self.momentum = momentum
        self.backprop = backprop
        self.gradient = gradient
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
        batch, n, _ = s0.shape
        if edges0 is None:
            edges0 = complete_graph(mask, batch, n, s0.device, s0.dtype)
        if self.steps == 0:
            self.inner_losses = torch.zeros(0)
            return s0, edges0
        if self.gradient == "first-order":
            s, edges, self.inner_losses = captured(self, self._first_order_loop)(s0, z, edges0, mask)
        elif self.refine_nodes:
            (s, edges), self.inner_losses = descend(autograd_gradient(self._loss, (z, mask)), (s0, edges0),
                                                    *self._descent())
        else:
            s = s0
            (edges,), self.inner_losses = descend(autograd_gradient(self._loss_of_edges, (s0, z, mask)), (edges0,),
                                                  *self._descent())
        finite_checks.queue([s0, edges0, z], self.inner_losses, [s, edges], self.inner_lr)
        return s, edges

    def _first_order_loop(self, s0: torch.Tensor, z: torch.Tensor, edges0: torch.Tensor, mask: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (nodes [B, N, D], edges [B, N, N], inner losses [steps]); what ``srn.capture`` compiles."""
        fixed_nodes = None if self.refine_nodes else s0
        energy = GraphEnergy(self.encoder, z, mask, s0.shape[1], nodes=fixed_nodes, scale=-self.inner_lr)
        if self.refine_nodes:
            (s, edges), losses = descend(energy, (s0, edges0), *self._descent(), lr_folded=True)
            return s, edges, losses
        (edges,), losses = descend(energy, (edges0,), *self._descent(), lr_folded=True)
        return s0, edges, losses

    def _descent(self) -> tuple[int, float, float, str]:
        return self.steps, self.inner_lr, self.momentum, self.backprop

    def _loss(self, s, edges, z, mask):
        return (self.encoder(s, edges, mask) - z).pow(2).sum()

    def _loss_of_edges(self, edges, s, z, mask):
        return self._loss(s, edges, z, mask)

    def extra_repr(self) -> str:
        return (
            f"steps={self.steps}, inner_lr={self.inner_lr}, refine_nodes={self.refine_nodes}, "
            f"momentum={self.momentum}, backprop={self.backprop!r}, gradient={self.gradient!r}"
        )
