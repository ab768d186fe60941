"""SRN between the perception stage (``RN.conv``) and the Relational Network of
kimhc6028/relational-networks (the paper's section 3.1 and appendix D).

The 25 cells of the conv feature map [B, 24, 5, 5] are the proposed set S0 [B, 25, 24]
(the RN's own entities, in the RN's own order); z = Linear(flattened feature map) is
H_embed, which shares G's weights through the feature map; the refined set goes back to
[B, 24, 5, 5] so that every upstream line after ``self.conv`` (coordinates, question,
pairing, g, f) runs unchanged. The refiner is installed as a forward hook on ``RN.conv``
and its parameters join the Adam optimiser the upstream builds in ``RN.__init__``.
"""
import contextlib
from typing import Iterator

import torch
from torch import nn

from srn import SetEncoder, SetRefiner

CHANNELS = 24
CELLS = 25


class FeatureMapRefiner(nn.Module):
    """Refines a conv feature map [B, C, H, W] as the set of its H*W cells of C dims."""

    def __init__(self, channels: int, cells: int, embed_dim: int, steps: int, inner_lr: float):
        super().__init__()
        self.embed = nn.Linear(channels * cells, embed_dim)
        self.refiner = SetRefiner(SetEncoder(channels, embed_dim), steps, inner_lr)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """feature_map [B, C, H, W] -> refined [B, C, H, W] (the same tensor with 0 steps)."""
        b, c, h, w = feature_map.shape
        s0 = feature_map.view(b, c, h * w).permute(0, 2, 1)  # [B, H*W, C], the RN's x_flat
        z = self.embed(feature_map.flatten(1))  # [B, E]
        s = self.refiner(s0, z)  # [B, H*W, C]
        return s.permute(0, 2, 1).reshape(b, c, h, w).contiguous()


def add_srn(model: nn.Module, steps: int, inner_lr: float, embed_dim: int = 256, seed: int = 0) -> FeatureMapRefiner:
    """Insert an SRN into an upstream ``RN`` in place; returns it (also ``model.srn``).

    Its weights are initialised from ``seed`` without touching the global torch RNG, so
    the upstream's random stream (dropout) is the baseline's. Its parameters are added to
    ``model.optimizer`` as a new group with the optimiser's own settings (lr, betas, ...).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        refiner = FeatureMapRefiner(CHANNELS, CELLS, embed_dim, steps, inner_lr)
    device = next(model.parameters()).device
    model.srn = refiner.to(device)
    model.conv.register_forward_hook(lambda module, inputs, output: model.srn(output))
    model.optimizer.add_param_group({"params": list(refiner.parameters())})
    return refiner


@contextlib.contextmanager
def inner_steps(refiner: FeatureMapRefiner, steps: int) -> Iterator[None]:
    """Within the block the refiner runs ``steps`` inner steps (0: the unrefined set)."""
    trained = refiner.refiner.steps
    refiner.refiner.steps = steps
    try:
        yield
    finally:
        refiner.refiner.steps = trained
