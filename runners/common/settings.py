"""One path from a preset plus flags to frozen settings, the same in every runner, and one
way for a setting to declare its type and range (``Range``, ``Checked``)."""
import math
from dataclasses import MISSING, dataclass, fields, is_dataclass
from types import UnionType
from typing import Annotated, Any, Mapping, TypeVar, Union, get_args, get_origin, get_type_hints

from runners.common.cli import UsageError

T = TypeVar("T")


def with_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """``values`` with each override that is not None (a flag the user gave) in its place."""
    return {**values, **{key: value for key, value in overrides.items() if value is not None}}


def frozen(cls: type[T], values: Mapping[str, Any], source: str) -> T:
    """The frozen dataclass ``cls`` of ``values``; UsageError naming ``source`` (the preset
    file or the flags) for an unknown, missing or bad setting."""
    assert is_dataclass(cls)
    known = {field.name for field in fields(cls)}
    unknown = sorted(set(values) - known)
    missing = [field.name for field in fields(cls) if field.name not in values
               and field.default is MISSING and field.default_factory is MISSING]
    if unknown:
        raise UsageError(f"{source}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if missing:
        raise UsageError(f"{source}: missing setting(s) {', '.join(missing)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{source}: {error}") from None


@dataclass(frozen=True)
class Range:
    """The values a setting may take, declared once with its type as
    ``Annotated[int, Range(...)]``: numbers of ``kind`` (int: an integer, never a bool;
    float: a finite number, an integer too) from ``low`` to ``high`` (None: unbounded),
    each bound included unless ``low_open`` / ``high_open``."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not allowed for the setting ``name``, or None."""
        numeric = isinstance(value, int) if self.kind is int else isinstance(value, (int, float))
        allowed = numeric and not isinstance(value, bool) and math.isfinite(value) and (
            self.low is None or (value > self.low if self.low_open else value >= self.low)) and (
            self.high is None or (value < self.high if self.high_open else value <= self.high))
        return None if allowed else f"{name} must be {self.text()}, got {value!r}"

    def text(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what if self.high is None else f"{what} {'<' if self.high_open else '<='} {self.high:g}"


Count = Annotated[int, Range(int, 1)]  # sizes, epochs, widths: an integer >= 1
Index = Annotated[int, Range(int, 0)]  # seeds, GPU counts: an integer >= 0
Positive = Annotated[float, Range(float, 0, low_open=True)]  # learning rates: a finite number > 0
NonNegative = Annotated[float, Range(float, 0)]  # penalties: a finite number >= 0
Fraction = Annotated[float, Range(float, 0, 1, high_open=True)]  # dropout, momentum: in [0, 1)


class Checked:
    """Base of a settings dataclass whose fields declare their ranges in their types
    (``Count``, ``Positive``, ... or any ``Annotated[type, Range(...)]``; ``X | None`` also
    takes None): constructing one with any value outside them raises ValueError naming each.
    A subclass with its own ``__post_init__`` calls this one first."""

    def __post_init__(self):
        problems = [problem for name, value in ((field.name, getattr(self, field.name)) for field in fields(self))
                    if (problem := declared_problem(type(self), name, value)) is not None]
        if problems:
            raise ValueError("; ".join(problems))


def declared_problem(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the field ``name`` of ``cls`` by its declared Range."""
    declared = get_type_hints(cls, include_extras=True)[name]
    options = get_args(declared) if get_origin(declared) in (Union, UnionType) else (declared,)
    if value is None and type(None) in options:
        return None
    ranges = [extra for option in options if get_origin(option) is Annotated
              for extra in option.__metadata__ if isinstance(extra, Range)]
    return next((problem for problem in (rule.problem(name, value) for rule in ranges) if problem), None)
