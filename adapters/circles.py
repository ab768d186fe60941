"""A refiner in the circles set autoencoder (paper section 2.2, appendix B.1;
``ported/circles.py``, the official SRN code's model, ported): the refiner sits between G
and F. S0 is G's set, z = H_embed(G's flattened features) (a linear map to
``settings.embedding``, paper 100; G's feature count when None), and the features the
refiner may use are the 2 x 2 cells of G's last feature map [B, 4, C].

The refiner's parameters (its H_agg: hidden width, FSPool pieces; the inner loop's steps,
inner_lr, momentum, backprop) and H_embed come from ``adapters.contract.refiner_rng``, so G
and F keep the baseline's initial weights.
"""
from types import ModuleType

from torch import nn

from adapters.contract import Adapter, build_refiner, refiner_rng, uses_embedding
from patches.vendor import module_copy
from refiners.settings import KindSettings

UPSTREAM = "circles"  # a port (ported/circles.py), not a checkout under vendor/


def install(model: nn.Module, settings: KindSettings, detach_initial_set: bool = False) -> nn.Module:
    """Put the refiner of ``settings`` and its H_embed into a built ``CircleAutoencoder``;
    ``detach_initial_set``: refine a copy of S0 that passes no gradient to G, as the official
    code does (``ported.circles.CircleAutoencoder``). Returns the refiner."""
    generator = model.generator
    embedding = settings.embedding_or(generator.feature_count)
    with refiner_rng(settings.seed):
        refiner = build_refiner(settings, generator.element_dims, embedding, generator.channels)
        embed = nn.Linear(generator.feature_count, embedding) if uses_embedding(settings) else None
    model.refiner, model.embed, model.detach_initial_set = refiner, embed, detach_initial_set
    return refiner


def install_on_construction(module: ModuleType, settings: KindSettings, detach_initial_set: bool = False) -> ModuleType:
    """A copy of ``ported.circles`` whose ``build_autoencoder`` puts the refiner in."""
    def build_autoencoder(*args, **kwargs) -> nn.Module:
        model = module.build_autoencoder(*args, **kwargs)
        install(model, settings, detach_initial_set)
        return model

    return module_copy(module, build_autoencoder=build_autoencoder)


ADAPTER = Adapter(UPSTREAM, False, install, install_on_construction)
