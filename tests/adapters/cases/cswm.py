"""tkipf/c-swm: each refiner kind refining ContrastiveSWM's object states, built the way train.py builds
the model (``modules.ContrastiveSWM`` of ``adapters.cswm.install_on_construction``, then
``utils.weights_init``), on a tiny batch of random 6x10x10 observations (medium encoder:
K=3 masks of 2x2, hidden 32)."""
import functools

import numpy as np
import torch

from adapters import cswm as adapter
from refiners.settings import KindSettings
from patches import vendor
from tests.adapters.adapter_case import AdapterCase, case_settings

BATCH = 8
MODEL = dict(embedding_dim=4, input_dims=(6, 10, 10), hidden_dim=32, action_dim=6, num_objects=3,
             encoder="medium", copy_action=True)


@functools.cache
def _upstream():
    upstream = vendor.checkout(adapter.UPSTREAM)
    generator = torch.Generator().manual_seed(0)
    batch = (torch.rand(BATCH, 6, 10, 10, generator=generator), torch.randint(0, 6, (BATCH,), generator=generator),
             torch.rand(BATCH, 6, 10, 10, generator=generator))
    return upstream, batch


def _build(modules):
    utils = vendor.import_modules(_upstream()[0], ["utils"]).utils
    torch.manual_seed(0)
    model = modules.ContrastiveSWM(**MODEL)
    model.apply(utils.weights_init)
    return model


def _fresh_modules():
    return vendor.import_modules(_upstream()[0], ["modules"]).modules


def make_baseline():
    return _build(_fresh_modules())


def make(settings: KindSettings):
    model = _build(adapter.install_on_construction(_fresh_modules(), settings))
    return model, model.obj_encoder


def loss(model):
    """ContrastiveSWM.contrastive_loss; its negatives are drawn from numpy's global RNG,
    seeded here (and restored after) so that every call sees the same negatives."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        return model.contrastive_loss(*_upstream()[1])
    finally:
        np.random.set_state(state)


def output(model):
    """The states [B, K, D] of model.forward (obj_encoder(obj_extractor(obs)))."""
    return model(_upstream()[1][0])


TINY = {"srn": dict(steps=0, inner_lr=0.05, hidden=32)}
CASES = [AdapterCase(adapter.UPSTREAM, kind, case_settings(kind, TINY), make, make_baseline, loss, output)
         for kind in adapter.ADAPTER.kinds()]
