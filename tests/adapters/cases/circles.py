"""Circles (ported/circles.py, the official SRN code's set autoencoder, ported): each refiner
kind between G and F of a tiny autoencoder (set size 9, widths 4-16), built through
``adapters.circles.install_on_construction``, on a fixed batch of 4 random sparse binary
images; the loss is the runner's, the squared error summed."""
import functools
from types import ModuleType

import torch

from adapters import circles as adapter
from ported import circles
from refiners.settings import KindSettings
from tests.adapters.adapter_case import AdapterCase, case_settings

MODEL = dict(set_size=9, element_dims=10, generator_widths=(4, 8, 8, 16), decoder_widths=(16, 8, 8))


def autoencoder(module: ModuleType = circles) -> circles.CircleAutoencoder:
    """The tiny autoencoder as ``module.build_autoencoder`` builds it, torch seeded first."""
    torch.manual_seed(0)
    return module.build_autoencoder(**MODEL)


@functools.cache
def images() -> torch.Tensor:
    """[4, 3, 64, 64]: a tenth of the pixels on, the same on every call."""
    return (torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.9).float()


def make_baseline():
    return autoencoder()


def make(settings: KindSettings):
    model = autoencoder(adapter.install_on_construction(circles, settings))
    return model, model.refiner


def loss(model):
    reconstruction, _, _ = model(images())
    return (reconstruction - images()).pow(2).sum()


def output(model):
    return model(images())[0]


TINY = {"srn": dict(steps=0, inner_lr=0.1, hidden=16, embedding=12)}
CASES = [AdapterCase(adapter.UPSTREAM, kind, case_settings(kind, TINY), make, make_baseline, loss, output)
         for kind in adapter.ADAPTER.kinds()]
