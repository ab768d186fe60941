"""Settings whose fields declare their type and allowed values once, in the type itself:
``Annotated[int, Range(int, 1)]`` (``Count``), ``Annotated[str, OneOf(("a", "b"))]``, ...
A frozen dataclass deriving from ``Checked`` refuses, on construction, every value outside
its fields' declarations; ``declared_problem`` checks one value against a declared type
(what command-line flags use). The refiners' settings (``srn.inner_descent``), the
refiner kinds' settings (``refiners``) and every runner's settings are declared this way."""
import math
from dataclasses import dataclass, fields
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints
from types import UnionType


@dataclass(frozen=True)
class Range:
    """Numbers of ``kind`` (int: an integer, never a bool; float: a finite number, an
    integer too) from ``low`` to ``high`` (None: unbounded), each bound included unless
    ``low_open`` / ``high_open``."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed ("must be ..., got ..."), or None."""
        numeric = isinstance(value, int) if self.kind is int else isinstance(value, (int, float))
        allowed = numeric and not isinstance(value, bool) and math.isfinite(value) and (
            self.low is None or (value > self.low if self.low_open else value >= self.low)) and (
            self.high is None or (value < self.high if self.high_open else value <= self.high))
        return None if allowed else f"must be {self.text()}, got {value!r}"

    def text(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what if self.high is None else f"{what} {'<' if self.high_open else '<='} {self.high:g}"


@dataclass(frozen=True)
class OneOf:
    """One of the strings ``choices``."""

    choices: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"


Count = Annotated[int, Range(int, 1)]  # sizes, epochs, widths: an integer >= 1
Index = Annotated[int, Range(int, 0)]  # seeds, GPU counts: an integer >= 0
Positive = Annotated[float, Range(float, 0, low_open=True)]  # learning rates: a finite number > 0
NonNegative = Annotated[float, Range(float, 0)]  # penalties: a finite number >= 0
Fraction = Annotated[float, Range(float, 0, 1, high_open=True)]  # dropout, momentum: in [0, 1)


def value_problem(declared: Any, value: Any) -> str | None:
    """Why ``value`` is not allowed by the declared type (``Annotated[type, rule]``, a rule
    being any object with ``problem(value) -> str | None`` such as ``Range`` and ``OneOf``;
    or ``X | None``, which also takes None), or None; no rule: anything is allowed."""
    options = get_args(declared) if get_origin(declared) in (Union, UnionType) else (declared,)
    if value is None and type(None) in options:
        return None
    rules = [extra for option in options if get_origin(option) is Annotated
             for extra in option.__metadata__ if hasattr(extra, "problem")]
    return next((problem for problem in (rule.problem(value) for rule in rules) if problem), None)


def declared_problem(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the field ``name`` of ``cls``, by its declaration."""
    problem = value_problem(get_type_hints(cls, include_extras=True)[name], value)
    return None if problem is None else f"{name} {problem}"


class Checked:
    """Base of a settings dataclass whose fields declare their values in their types:
    constructing one with any value outside them raises ValueError naming each. A
    subclass with its own ``__post_init__`` calls this one first."""

    def __post_init__(self):
        problems = [problem for name, value in ((field.name, getattr(self, field.name)) for field in fields(self))
                    if (problem := declared_problem(type(self), name, value)) is not None]
        if problems:
            raise ValueError("; ".join(problems))
