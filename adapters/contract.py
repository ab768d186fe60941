"""The one contract every adapter follows: which refiner to insert (``RefinerSettings``), how
it is built (``build_refiner``) and seeded (``refiner_rng``), and the two entry points an
adapter exposes (``Adapter``).

The refiner's parameters are drawn from torch's CPU generator seeded with the run's seed on
a fork of it (``refiner_rng``), so the upstream's own random streams — its initial weights,
shuffles, dropout masks — are those of the baseline run of the same seed, and with zero
inner steps the refined model is the baseline bit for bit.
"""
import contextlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterator

import torch
from torch import nn

from srn import GraphEncoder, GraphRefiner, SetEncoder, SetRefiner

KINDS = ("srn", "grn")
BACKPROPS = ("unroll", "last")
MAX_STEPS = 1000  # each inner step is a double backward pass per batch: more would not finish


@dataclass(frozen=True)
class RefinerSettings:
    """One refiner.

    kind: "srn" (SetRefiner over SetEncoder) or "grn" (GraphRefiner over GraphEncoder);
    steps: inner steps r; inner_lr: inner learning rate; momentum: of the inner SGD (0 =
    plain gradient descent); backprop: "unroll" (through every step) or "last";
    hidden: H_agg's hidden width; embedding: the width of z and of H_agg's output (None:
    the width the adapter takes from its upstream model); pieces: FSPool's pieces;
    seed: initialises the refiner's parameters (the run's seed; None until a run sets it).
    """

    kind: str
    steps: int
    inner_lr: float
    momentum: float = 0.0
    backprop: str = "unroll"
    hidden: int = 512
    embedding: int | None = None
    pieces: int = 20
    seed: int | None = None

    def __post_init__(self):
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.steps, int) or not 0 <= self.steps <= MAX_STEPS:
            problems.append(f"steps must be an integer in 0..{MAX_STEPS}, got {self.steps!r}")
        if not isinstance(self.inner_lr, (int, float)) or not (self.inner_lr > 0 and math.isfinite(self.inner_lr)):
            problems.append(f"inner_lr must be a finite number > 0, got {self.inner_lr!r}")
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.backprop not in BACKPROPS:
            problems.append(f"backprop must be one of {', '.join(BACKPROPS)}, got {self.backprop!r}")
        for name in ("hidden", "pieces") + (("embedding",) if self.embedding is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))

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
