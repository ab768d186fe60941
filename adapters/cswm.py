"""SRN in the pinned C-SWM (paper section 3.2, appendix E): the object encoder's state
vectors are refined before the relational transition model sees them.

C-SWM computes states as ``model.obj_encoder(model.obj_extractor(obs))`` on every path
(``contrastive_loss``, ``forward``, eval.py's ranking loop, train.py's decoder branch), so
one hook covers them all: ``install`` makes ``model.obj_encoder`` an ``RefinedObjectEncoder``
around the original encoder. ``install_on_construction`` hands train.py and eval.py a
``modules`` whose ``ContrastiveSWM`` installs it at construction, so both scripts run
unchanged, eval.py included when it loads an SRN checkpoint.

The SRN's parameters come from ``adapters.contract.refiner_rng`` (see there). It has no
Conv2d, so ``utils.weights_init`` (which re-initialises every Conv2d) leaves it alone.
"""
from types import ModuleType

import torch
from torch import nn

from adapters.contract import Adapter, build_refiner, refiner_rng, uses_embedding
from patches.vendor import module_copy
from refiners.settings import KindSettings

UPSTREAM = "c-swm"


class RefinedObjectEncoder(nn.Module):
    """The object encoder of C-SWM with a refiner: object masks [B, K, H, W] -> states [B, K, D].

    S0 = encoder(masks) (C-SWM's EncoderMLP, [B, K, D]); z = embed(flatten(masks)) [B, E],
    a linear projection of all K masks (for a kind that uses z); the features are the K
    masks, flattened [B, K, H*W]; states = the refiner of ``settings``(S0, z, features). E
    is ``settings.embedding``, by default C-SWM's hidden_dim (512 in the paper: z is as
    wide as the transition MLP).
    """

    def __init__(self, encoder: nn.Module, num_objects: int, mask_size: int, state_dim: int, embedding_dim: int,
                 settings: KindSettings):
        super().__init__()
        self.initial = encoder
        self.embed = nn.Linear(mask_size, embedding_dim) if uses_embedding(settings) else None
        self.refiner = build_refiner(settings, state_dim, embedding_dim, mask_size // num_objects)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """masks [B, K, H, W] -> refined states [B, K, D]."""
        s0 = self.initial(masks)
        z = None if self.embed is None else self.embed(masks.flatten(1))
        return self.refiner(s0, z, features=masks.flatten(2)).set


def install(model: nn.Module, settings: KindSettings) -> RefinedObjectEncoder:
    """Replace ``model.obj_encoder`` of a C-SWM ``ContrastiveSWM`` by an RefinedObjectEncoder
    around it; returns the new encoder."""
    mask_size = int(model.num_objects * model.width * model.height)
    with refiner_rng(settings.seed):
        encoder = RefinedObjectEncoder(model.obj_encoder, model.num_objects, mask_size, model.embedding_dim,
                                   settings.embedding_or(model.hidden_dim), settings)
    model.obj_encoder = encoder
    return encoder


def install_on_construction(modules: ModuleType, settings: KindSettings) -> ModuleType:
    """A copy of the upstream's freshly imported ``modules`` whose ``ContrastiveSWM``
    installs the refiner when it is built; pass it to ``patches.cswm.run_script(...,
    modules=...)``. A copy, so that the upstream class keeps its own name in its module
    (its ``super(ContrastiveSWM, self)`` must find the original class)."""

    class ContrastiveSWMWithRefiner(modules.ContrastiveSWM):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            install(self, settings)

    return module_copy(modules, ContrastiveSWM=ContrastiveSWMWithRefiner)


ADAPTER = Adapter(UPSTREAM, False, install, install_on_construction)
