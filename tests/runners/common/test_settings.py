from dataclasses import dataclass

import pytest

from runners.common.errors import UsageError
from runners.common.settings import frozen, with_overrides
from declared.settings import Checked, Count, Positive


@dataclass(frozen=True)
class Toy:
    epochs: int
    lr: float = 0.1

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


def test_flags_given_override_the_preset_and_absent_ones_do_not():
    assert with_overrides({"epochs": 2, "lr": 0.1}, {"epochs": 5, "lr": None}) == {"epochs": 5, "lr": 0.1}


def test_frozen_settings_from_a_preset():
    toy = frozen(Toy, {"epochs": 3}, "toy.yaml")
    assert toy == Toy(3, 0.1)
    with pytest.raises(AttributeError):
        toy.epochs = 4


@pytest.mark.parametrize("values,message", [
    ({"epochs": 3, "lrr": 0.2}, "toy.yaml: unknown setting(s) lrr (known: epochs, lr)"),
    ({"lr": 0.2}, "toy.yaml: missing setting(s) epochs"),
    ({"epochs": 0}, "toy.yaml: epochs must be >= 1, got 0"),
])
def test_unknown_missing_or_bad_settings_are_usage_errors(values, message):
    with pytest.raises(UsageError) as error:
        frozen(Toy, values, "toy.yaml")
    assert str(error.value) == message


def test_a_declared_setting_outside_its_range_is_a_usage_error_naming_the_source():
    with pytest.raises(UsageError, match="^toy.yaml: size must be an integer >= 1, got 0$"):
        frozen(Declared, {"size": 0, "lr": 0.1}, "toy.yaml")


@dataclass(frozen=True)
class Declared(Checked):
    size: Count
    lr: Positive
