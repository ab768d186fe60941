"""What the shared adapter tests (test_adapters.py) need to know of one adapter and kind.

Each module in tests/adapters/cases/ defines ``CASES``, a list of AdapterCase: one per
registered refiner kind (refiners/registry.py) its adapter (adapters/registry.py) can
insert into its pinned upstream model, each with its kind's default settings (``case_settings``)
but those the kind has no default for, which the module gives for its tiny model.
"""
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from refiners.registry import KINDS
from refiners.settings import KindSettings


@dataclass(frozen=True)
class AdapterCase:
    """upstream, kind: the registry entry and the refiner kind this case tests.
    settings: the refiner's settings for the tiny model (steps and seed set per test).
    make(settings): a tiny upstream model, built by the upstream's own code with the
        adapter installed by its ``install_on_construction`` entry point, and the inserted
        refiner module.
    make_baseline(): the same upstream model with the same initial weights, no adapter.
    loss(model): the upstream's own training loss on a fixed tiny batch (same batch on
        every call).
    output(model): an output of the model on that batch, called under torch.no_grad()
        with the model in eval mode.
    target(model): the part of the model the adapter's ``install`` takes (the model itself
        unless the upstream's model is a composite, as CLUTRR's encoder + decoder).
    """

    upstream: str
    kind: str
    settings: KindSettings
    make: Callable[[KindSettings], tuple[nn.Module, nn.Module]]
    make_baseline: Callable[[], nn.Module]
    loss: Callable[[nn.Module], torch.Tensor]
    output: Callable[[nn.Module], torch.Tensor]
    target: Callable[[nn.Module], nn.Module] = lambda model: model

    @property
    def name(self) -> str:
        return f"{self.upstream}-{self.kind}"


def case_settings(kind: str, tiny: dict[str, dict]) -> KindSettings:
    """The settings of ``kind`` for a case: its defaults with ``tiny[kind]`` over them (what a
    kind has no default for, e.g. the SRN's steps and inner learning rate)."""
    return KINDS[kind].settings(kind=kind, **tiny.get(kind, {}))
