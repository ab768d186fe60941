"""The kind ``srn``: the Set Refiner Network (Huang, He, Zhang et al., NeurIPS 2020) over a
permutation-invariant set encoder (per-element MLP, then FSPool)."""
import torch
from torch import nn

from refiners.descent import DescentSettings
from refiners.kind import Kind, Refined
from srn import SetEncoder, SetRefiner


class SetRefinerKind(SetRefiner):
    """``srn.SetRefiner`` answering the kinds' call (features, feature_mask and edges0 are not used)."""

    def forward(self, s0: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, feature_mask: torch.Tensor | None = None,
                edges0: torch.Tensor | None = None) -> Refined:
        """s0 [B, N, D], z [B, E], mask [B, N] or None -> Refined(set [B, N, D], None)."""
        return Refined(super().forward(s0, z, mask))


def build(settings: DescentSettings, element_dim: int, embedding_dim: int, feature_dim: int | None) -> nn.Module:
    encoder = SetEncoder(element_dim, embedding_dim, settings.hidden, settings.pieces)
    return SetRefinerKind(encoder, settings.steps, settings.inner_lr, settings.momentum, settings.backprop,
                          settings.gradient)


KIND = Kind("srn", "SRN", DescentSettings, build, refines_edges=False,
            summary="the Set Refiner Network: inner gradient descent on a set encoder's embedding")
