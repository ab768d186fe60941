"""kimhc6028/relational-networks: SRN between RN.conv and the RN, on a tiny batch of
generated Sort-of-CLEVR questions (batch 4, the RN's coordinate tensor sized to it)."""
import functools
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from adapters.relational_networks import add_srn
from patches import relational_networks
from runners.sortofclevr.data import generate
from runners.sortofclevr.scenes import SortOfClevr
from runners.sortofclevr.training import batch_tensors
from tests.adapters.adapter_case import AdapterCase

BATCH = 4
EMBED = 16


@functools.cache
def _upstream():
    upstream = relational_networks.checkout()
    split = generate(SortOfClevr(upstream), 1, seed=0)
    tensors = batch_tensors(split, "rel", np.arange(BATCH), torch.device("cpu"))
    return relational_networks.model_module(upstream), tensors


def make_baseline():
    model_module, _ = _upstream()
    torch.manual_seed(0)
    return model_module.RN(SimpleNamespace(batch_size=BATCH, lr=1e-4, cuda=False))


def make(steps):
    model = make_baseline()
    return model, add_srn(model, steps, inner_lr=0.1, embed_dim=EMBED, seed=1)


def loss(model):
    """The loss of the upstream RN.train_ (nll of its log-softmax output); the dropout it
    applies is seeded, so two models see the same dropout mask."""
    images, questions, answers = _upstream()[1]
    torch.manual_seed(1)
    return F.nll_loss(model(images, questions), answers)


def output(model):
    images, questions, _ = _upstream()[1]
    torch.manual_seed(1)
    return model(images, questions)


CASES = [AdapterCase("relational-networks-SRN", make, make_baseline, loss, output)]
