"""What a refiner kind is (``Kind``) and the one call every kind's module answers
(``Refined``): what any kind may need goes in, the refined set (and graph) comes out."""
from dataclasses import dataclass, fields
from typing import Any, Callable, NamedTuple

import torch
from torch import nn


class Refined(NamedTuple):
    """What a refiner returns: the refined set [B, N, D] and, for a kind that refines a
    graph, its edge weights [B, N, N] (else None)."""

    set: torch.Tensor
    edges: torch.Tensor | None = None


@dataclass(frozen=True)
class Kind:
    """One refiner kind.

    name: its arm's name and its flag (``--<name>``); label: its name in tables and plots;
    settings: its frozen settings dataclass (``refiners.settings.KindSettings``), whose
        first field is ``kind`` and whose fields declare their values and carry their
        flag's help (``help`` in the field's metadata); ``seed`` and ``embedding`` are set
        per run and per upstream; every kind is iterative, with ``steps`` and a
        ``schedule`` of them;
    build(settings, element_dim, embedding_dim, feature_dim) -> the refiner module, called
        as ``module(s0, z, mask=None, features=None, feature_mask=None, edges0=None) ->
        Refined`` with s0 [B, N, element_dim], z [B, embedding_dim] (None for a kind that
        does not use it), mask [B, N] bool (True = real element), features
        [B, M, feature_dim] (the perception features the set was made from; ``feature_dim``
        None: the adapter has none) with feature_mask [B, M] bool, and edges0 [B, N, N]
        (the initial graph of a kind that refines edges; None: the complete graph); the
        module runs ``module.steps`` iterations per call (``refiners.schedule`` sets it);
    refines_edges: whether its result has edge weights, which only an upstream whose
        reasoner weights pairs can use (``adapters.contract.Adapter.uses_edges``);
    uses_embedding: whether it uses z (if not, the adapters build no H_embed for it and
        pass z = None);
    summary: one line for its flag's help.
    """

    name: str
    label: str
    settings: type
    build: Callable[[Any, int, int, int | None], nn.Module]
    refines_edges: bool
    summary: str
    uses_embedding: bool = True

    @property
    def flag(self) -> str:
        """"--slot-attention" for the kind "slot-attention"."""
        return f"--{self.name}"

    def setting_names(self) -> tuple[str, ...]:
        """The settings a preset or a flag can give (all but ``kind`` and the run's ``seed``)."""
        return tuple(field.name for field in fields(self.settings) if field.name not in ("kind", "seed"))
