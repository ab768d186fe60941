"""SRN between the perception stage (``RN.conv``) and the Relational Network of
kimhc6028/relational-networks (the paper's section 3.1 and appendix D).

The 25 cells of the conv feature map [B, 24, 5, 5] are the proposed set S0 [B, 25, 24]
(the RN's own entities, in the RN's own order); z = Linear(flattened feature map) is
H_embed, which shares G's weights through the feature map; the refined set goes back to
[B, 24, 5, 5] so that every upstream line after ``self.conv`` (coordinates, question,
pairing, g, f) runs unchanged. The refiner is installed as a forward hook on ``RN.conv``
and its parameters join the Adam optimiser the upstream builds in ``RN.__init__``; they
come from ``adapters.contract.refiner_rng``.
"""
from types import ModuleType

import torch
from torch import nn

from adapters.contract import Adapter, build_refiner, refiner_rng, uses_embedding
from refiners.settings import KindSettings

UPSTREAM = "relational-networks"
CHANNELS = 24
CELLS = 25
EMBEDDING = 256  # the width of z when the settings leave it open (appendix D does not state it)


class FeatureMapRefiner(nn.Module):
    """Refines a conv feature map [B, C, H, W] as the set of its H*W cells of C dims."""

    def __init__(self, channels: int, cells: int, settings: KindSettings):
        super().__init__()
        embedding = settings.embedding_or(EMBEDDING)
        self.embed = nn.Linear(channels * cells, embedding) if uses_embedding(settings) else None
        self.refiner = build_refiner(settings, channels, embedding, channels)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """feature_map [B, C, H, W] -> refined [B, C, H, W] (the same tensor with 0 steps)."""
        b, c, h, w = feature_map.shape
        s0 = feature_map.view(b, c, h * w).permute(0, 2, 1)  # [B, H*W, C], the RN's x_flat
        z = None if self.embed is None else self.embed(feature_map.flatten(1))  # [B, E]
        s = self.refiner(s0, z, features=s0).set  # [B, H*W, C]; the features: the cells themselves
        return s.permute(0, 2, 1).reshape(b, c, h, w).contiguous()


OLD_PREFIX, PREFIX = "srn.", "refiner."  # where the refiner's weights were, and are, in the RN's state dict


def renamed_weights(model: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """A state-dict pre-hook: weights saved before the refiner of any kind was ``refiner``
    (under ``srn.``) load where it is now."""
    for key in [key for key in state_dict if key.startswith(prefix + OLD_PREFIX)]:
        state_dict[prefix + PREFIX + key[len(prefix + OLD_PREFIX):]] = state_dict.pop(key)


def install(model: nn.Module, settings: KindSettings) -> FeatureMapRefiner:
    """Insert a refiner of any kind into an upstream ``RN`` in place; returns it (also
    ``model.refiner``). Its parameters are added to ``model.optimizer`` as a new group with
    the optimiser's own settings (lr, betas, ...). Checkpoints saved before it was named
    ``refiner`` load too (``renamed_weights``)."""
    with refiner_rng(settings.seed):
        refiner = FeatureMapRefiner(CHANNELS, CELLS, settings)
    device = next(model.parameters()).device
    model.refiner = refiner.to(device)
    model.conv.register_forward_hook(lambda module, inputs, output: model.refiner(output))
    model.register_load_state_dict_pre_hook(renamed_weights)
    model.optimizer.add_param_group({"params": list(refiner.parameters())})
    return refiner


def install_on_construction(model_module: ModuleType, settings: KindSettings) -> ModuleType:
    """A copy of the upstream's freshly imported ``model`` module whose ``RN(args)`` is
    built with the refiner installed (main.py builds ``RN(args)``)."""

    class RNWithRefiner(model_module.RN):
        def __init__(self, args):
            super().__init__(args)
            install(self, settings)

    copy = ModuleType(model_module.__name__, model_module.__doc__)
    copy.__dict__.update(vars(model_module))
    copy.RN = RNWithRefiner
    return copy


ADAPTER = Adapter(UPSTREAM, False, install, install_on_construction)
