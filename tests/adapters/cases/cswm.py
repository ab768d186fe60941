"""tkipf/c-swm: SRN refining ContrastiveSWM's object states, built the way train.py builds
the model (``modules.ContrastiveSWM`` of ``adapters.cswm.modules_with_srn``, then
``utils.weights_init``), on a tiny batch of random 6x10x10 observations (medium encoder:
K=3 masks of 2x2, hidden 32)."""
import functools

import numpy as np
import torch

from adapters.cswm import SRNSettings, modules_with_srn
from patches import vendor
from tests.adapters.adapter_case import AdapterCase

BATCH = 8
MODEL = dict(embedding_dim=4, input_dims=(6, 10, 10), hidden_dim=32, action_dim=6, num_objects=3,
             encoder="medium", copy_action=True)


@functools.cache
def _upstream():
    upstream = vendor.checkout("c-swm")
    generator = torch.Generator().manual_seed(0)
    batch = (torch.rand(BATCH, 6, 10, 10, generator=generator), torch.randint(0, 6, (BATCH,), generator=generator),
             torch.rand(BATCH, 6, 10, 10, generator=generator))
    return upstream, vendor.import_modules(upstream, ["modules", "utils"]), batch


def _build(modules):
    _, upstream_modules, _ = _upstream()
    torch.manual_seed(0)
    model = modules.ContrastiveSWM(**MODEL)
    model.apply(upstream_modules.utils.weights_init)
    return model


def make_baseline():
    return _build(_upstream()[1].modules)


def make(steps):
    model = _build(modules_with_srn(_upstream()[0], SRNSettings(steps, inner_lr=0.05, seed=1)))
    return model, model.obj_encoder


def loss(model):
    """ContrastiveSWM.contrastive_loss; its negatives are drawn from numpy's global RNG,
    seeded here (and restored after) so that every call sees the same negatives."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        return model.contrastive_loss(*_upstream()[2])
    finally:
        np.random.set_state(state)


def output(model):
    """The states [B, K, D] of model.forward (obj_encoder(obj_extractor(obs)))."""
    return model(_upstream()[2][0])


CASES = [AdapterCase("c-swm-SRN", make, make_baseline, loss, output)]
