"""The one contract every adapter follows: which refiner to insert (a kind's settings,
``refiners.settings.KindSettings``), how it is built (``build_refiner``, through the
registry ``refiners.registry.KINDS``) and seeded (``refiner_rng``), and the two entry
points an adapter exposes (``Adapter``).

The refiner's parameters are drawn from torch's CPU generator seeded with the run's seed on
a fork of it (``refiner_rng``), so the upstream's own random streams — its initial weights,
shuffles, dropout masks — are those of the baseline run of the same seed, and with zero
inner steps the refined model is the baseline bit for bit.
"""
import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterator

import torch
from torch import nn

from refiners.kind import Kind
from refiners.registry import KINDS
from refiners.schedule import follow_schedule
from refiners.settings import KindSettings


@contextlib.contextmanager
def refiner_rng(seed: int) -> Iterator[None]:
    """Within the block torch's CPU generator is seeded with ``seed``; afterwards it is back
    where it was, as if the block had drawn nothing. Only the CPU generator is forked, so
    only it is seeded: the CUDA generators are never touched (``torch.manual_seed`` would
    re-seed them, and the fork would not restore them)."""
    if seed is None:
        raise ValueError("the refiner's seed is not set: its settings need seed=<the run's seed>")
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def build_refiner(settings: KindSettings, element_dim: int, embedding_dim: int,
                  feature_dim: int | None = None) -> nn.Module:
    """The refiner of ``settings`` (its kind's ``build``) for elements of ``element_dim``, an
    embedding z of ``embedding_dim`` and perception features of ``feature_dim`` (None: the
    adapter has none beyond the set), running the steps of ``settings.schedule``
    (``refiners.schedule.follow_schedule``); call it inside ``refiner_rng``. Its call:
    ``refiners.kind.Kind``."""
    refiner = KINDS[settings.kind].build(settings, element_dim, embedding_dim, feature_dim)
    return follow_schedule(refiner, settings.steps, settings.schedule)


def uses_embedding(settings: KindSettings) -> bool:
    """Whether the refiner of ``settings`` uses z: an adapter builds H_embed only then (and
    passes z = None otherwise)."""
    return KINDS[settings.kind].uses_embedding


@dataclass(frozen=True)
class Adapter:
    """How one upstream takes a refiner.

    upstream: its name under vendor/ (circles: its port, ported/circles.py); uses_edges:
        whether its reasoner weights pairs of elements, so that it can take a kind that
        refines edges (``takes``);
    install(model, settings, **options) -> the inserted refiner module: puts the refiner
        into an upstream model already built (options: the adapter's own, e.g. CLUTRR's
        padding);
    install_on_construction(module, settings, **options) -> a module: given the freshly
        imported upstream module through which the upstream's own script builds its
        model, returns the module to use instead, whose model is built with the refiner
        installed (a copy, or the same module patched).
    """

    upstream: str
    uses_edges: bool
    install: Callable[..., nn.Module]
    install_on_construction: Callable[..., ModuleType]

    def takes(self, kind: Kind) -> bool:
        """Whether this upstream can take a refiner of ``kind``."""
        return self.uses_edges or not kind.refines_edges

    def kinds(self) -> tuple[str, ...]:
        """The registered kinds it can take."""
        return tuple(name for name, kind in KINDS.items() if self.takes(kind))
