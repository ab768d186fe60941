"""The kind ``grn``: the Graph Refiner Network, the SRN's inner descent over the nodes and
edge weights of a complete graph, encoded by a graph encoder."""
import torch
from torch import nn

from refiners.descent import DescentSettings
from refiners.kind import Kind, Refined
from srn import GraphEncoder, GraphRefiner


class GraphRefinerKind(GraphRefiner):
    """``srn.GraphRefiner`` answering the kinds' call (features and feature_mask are not used)."""

    def forward(self, s0: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, feature_mask: torch.Tensor | None = None,
                edges0: torch.Tensor | None = None) -> Refined:
        """s0 [B, N, D], z [B, E], mask [B, N] or None, edges0 [B, N, N] or None (the complete
        graph) -> Refined(nodes [B, N, D], edges [B, N, N])."""
        return Refined(*super().forward(s0, z, edges0, mask))


def build(settings: DescentSettings, element_dim: int, embedding_dim: int, feature_dim: int | None) -> nn.Module:
    encoder = GraphEncoder(element_dim, embedding_dim, settings.hidden, settings.pieces)
    return GraphRefinerKind(encoder, settings.steps, settings.inner_lr, momentum=settings.momentum,
                            backprop=settings.backprop, gradient=settings.gradient)


KIND = Kind("grn", "GRN", DescentSettings, build, refines_edges=True,
            summary="the Graph Refiner Network: inner gradient descent on a complete graph's nodes and edges")
