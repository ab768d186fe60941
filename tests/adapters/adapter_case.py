"""What the shared adapter tests (test_adapters.py) need to know of one adapter.

Each module in tests/adapters/cases/ defines ``CASES``, a list of AdapterCase: one per
refiner an adapter can insert (SRN, GRN) into its pinned upstream model.
"""
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class AdapterCase:
    """name: "<upstream>-<refiner>", e.g. "c-swm-SRN".
    make(steps): a tiny upstream model, built by the upstream's own code with the adapter
        installed with ``steps`` inner steps, and the inserted refiner module.
    make_baseline(): the same upstream model with the same initial weights, no adapter.
    loss(model): the upstream's own training loss on a fixed tiny batch (same batch on
        every call).
    output(model): an output of the model on that batch, called under torch.no_grad()
        with the model in eval mode.
    """

    name: str
    make: Callable[[int], tuple[nn.Module, nn.Module]]
    make_baseline: Callable[[], nn.Module]
    loss: Callable[[nn.Module], torch.Tensor]
    output: Callable[[nn.Module], torch.Tensor]
