"""The one contract every adapter follows: which refiner to insert (``RefinerSettings``), how
it is built (``build_refiner``) and seeded (``refiner_rng``), and the two entry points an
adapter exposes (``Adapter``).

The refiner's parameters are drawn from torch's CPU generator seeded with the run's seed on
a fork of it (``refiner_rng``), so the upstream's own random streams — its initial weights,
shuffles, dropout masks — are those of the baseline run of the same seed, and with zero
inner steps the refined model is the baseline bit for bit.
"""
import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Callable, Iterator

import torch
from torch import nn

from srn import GraphEncoder, GraphRefiner, SetEncoder, SetRefiner
from srn.inner_descent import Backprop, Steps
from srn.settings import Checked, Count, Fraction, Index, OneOf, Positive

KINDS = ("srn", "grn")  # the refiner kinds, each an arm of its own name


@dataclass(frozen=True)
class RefinerSettings(Checked):
    """One refiner.

    kind: "srn" (SetRefiner over SetEncoder) or "grn" (GraphRefiner over GraphEncoder);
    steps: inner steps r; inner_lr: inner learning rate; momentum: of the inner SGD (0 =
    plain gradient descent); backprop: "unroll" (through every step) or "last";
    hidden: H_agg's hidden width; embedding: the width of z and of H_agg's output (None:
    the width the adapter takes from its upstream model); pieces: FSPool's pieces;
    seed: initialises the refiner's parameters (the run's seed; None until a run sets it).
    The inner loop's fields are declared as the refiners declare them
    (``srn.inner_descent.InnerDescent``); a value outside a declaration raises ValueError.
    """

    kind: Annotated[str, OneOf(KINDS)]
    steps: Steps
    inner_lr: Positive
    momentum: Fraction = 0.0
    backprop: Backprop = "unroll"
    hidden: Count = 512
    embedding: Count | None = None
    pieces: Count = 20
    seed: Index | None = None

    def embedding_or(self, width: int) -> int:
        """The width of z: ``embedding``, or the upstream's ``width`` when it is None."""
        return width if self.embedding is None else self.embedding


@contextlib.contextmanager
def refiner_rng(seed: int) -> Iterator[None]:
    """Within the block torch's CPU generator is seeded with ``seed``; afterwards it is back
    where it was, as if the block had drawn nothing. Only the CPU generator is forked, so
    only it is seeded: the CUDA generators are never touched (``torch.manual_seed`` would
    re-seed them, and the fork would not restore them)."""
    if seed is None:
        raise ValueError("the refiner's seed is not set: RefinerSettings(..., seed=<the run's seed>)")
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def build_refiner(settings: RefinerSettings, element_dim: int, embedding_dim: int) -> nn.Module:
    """The SetRefiner or GraphRefiner of ``settings`` for elements of ``element_dim`` and
    an embedding z of ``embedding_dim`` (call it inside ``refiner_rng``)."""
    options = dict(steps=settings.steps, inner_lr=settings.inner_lr, momentum=settings.momentum,
                   backprop=settings.backprop)
    if settings.kind == "srn":
        return SetRefiner(SetEncoder(element_dim, embedding_dim, settings.hidden, settings.pieces), **options)
    return GraphRefiner(GraphEncoder(element_dim, embedding_dim, settings.hidden, settings.pieces), **options)


@dataclass(frozen=True)
class Adapter:
    """How one pinned upstream takes a refiner.

    upstream: its name under vendor/; kinds: the refiner kinds it can insert;
    install(model, settings, **options) -> the inserted refiner module: puts the refiner
        into an upstream model already built (options: the adapter's own, e.g. CLUTRR's
        padding);
    install_on_construction(module, settings, **options) -> a module: given the freshly
        imported upstream module through which the upstream's own script builds its
        model, returns the module to use instead, whose model is built with the refiner
        installed (a copy, or the same module patched).
    """

    upstream: str
    kinds: tuple[str, ...]
    install: Callable[..., nn.Module]
    install_on_construction: Callable[..., ModuleType]
