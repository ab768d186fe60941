"""One path from a preset plus flags to frozen settings, the same in every runner (the
settings declare their values with ``declared.settings``)."""
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Mapping, TypeVar

from runners.common.errors import UsageError

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
