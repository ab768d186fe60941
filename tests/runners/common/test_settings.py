from dataclasses import dataclass

import pytest

from runners.common.cli import UsageError
from runners.common.settings import Checked, Count, Fraction, Index, NonNegative, Positive, frozen, with_overrides


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


@dataclass(frozen=True)
class Declared(Checked):
    size: Count
    lr: Positive
    rows: Count | None = None
    dropout: Fraction = 0.0
    seed: Index = 0
    l2: NonNegative = 0.0


@pytest.mark.parametrize("values, message", [
    ({"size": 0}, "size must be an integer >= 1, got 0"),
    ({"size": True}, "size must be an integer >= 1, got True"),
    ({"size": 2.0}, "size must be an integer >= 1, got 2.0"),
    ({"lr": 0}, "lr must be a finite number > 0, got 0"),
    ({"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
    ({"lr": "0.1"}, "lr must be a finite number > 0, got '0.1'"),
    ({"rows": 0}, "rows must be an integer >= 1, got 0"),
    ({"dropout": 1.0}, r"dropout must be a finite number in \[0, 1\), got 1.0"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"l2": -1e-4}, "l2 must be a finite number >= 0, got -0.0001"),
])
def test_a_setting_outside_its_declared_range_is_refused_by_name(values, message):
    with pytest.raises(ValueError, match="^" + message + "$"):
        Declared(**{"size": 1, "lr": 0.1, **values})


def test_every_problem_is_named_and_in_range_values_pass():
    assert Declared(3, 1, rows=None, dropout=0.5, seed=0, l2=0).lr == 1  # an integer is a number; None where declared
    with pytest.raises(ValueError, match="^size must be .*; lr must be "):
        Declared(0, -1)
    with pytest.raises(UsageError, match="^toy.yaml: size must be an integer >= 1, got 0$"):
        frozen(Declared, {"size": 0, "lr": 0.1}, "toy.yaml")
