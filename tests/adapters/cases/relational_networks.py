"""kimhc6028/relational-networks: SRN between RN.conv and the RN (``RN`` of
``adapters.relational_networks.install_on_construction``), on the relational questions of
one image drawn by the upstream's own generator (batch 4: the RN's coordinate tensor is
sized to it), converted as main.py converts them."""
import functools
import random
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from adapters import relational_networks as adapter
from refiners.settings import KindSettings
from patches import relational_networks
from tests.adapters.adapter_case import AdapterCase, case_settings

BATCH = 4


@functools.cache
def upstream_batch():
    """(the upstream's model module, (images [4, 3, 75, 75], questions [4, 11], answers [4]))."""
    upstream = relational_networks.checkout()
    random.seed(0)
    np.random.seed(0)
    image, (questions, answers), _ = relational_networks.generator_module(upstream).build_dataset()
    image = np.swapaxes(image, 0, 2)  # main.py's load_data
    tensors = (torch.from_numpy(np.stack([image] * BATCH)).float(),
               torch.from_numpy(np.asarray(questions[:BATCH])).float(),
               torch.from_numpy(np.asarray(answers[:BATCH])).long())
    return relational_networks.model_module(upstream), tensors


def _build(model_module):
    torch.manual_seed(0)
    return model_module.RN(SimpleNamespace(batch_size=BATCH, lr=1e-4, cuda=False))


def make_baseline():
    return _build(upstream_batch()[0])


def make(settings: KindSettings):
    model = _build(adapter.install_on_construction(upstream_batch()[0], settings))
    return model, model.refiner


def loss(model):
    """The loss of the upstream RN.train_ (nll of its log-softmax output); the dropout it
    applies is seeded, so two models see the same dropout mask."""
    images, questions, answers = upstream_batch()[1]
    torch.manual_seed(1)
    return F.nll_loss(model(images, questions), answers)


def output(model):
    images, questions, _ = upstream_batch()[1]
    torch.manual_seed(1)
    return model(images, questions)


TINY = {"srn": dict(steps=0, inner_lr=0.1, embedding=16)}
CASES = [AdapterCase(adapter.UPSTREAM, kind, case_settings(kind, TINY), make, make_baseline, loss, output)
         for kind in adapter.ADAPTER.kinds()]
