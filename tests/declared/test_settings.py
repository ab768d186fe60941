"""declared/settings.py: settings that declare their values in their types."""
from dataclasses import dataclass
from typing import Annotated

import pytest

from declared.settings import (Checked, Count, Fraction, Index, NonNegative, OneOf, Positive, Range, declared_problem,
                               value_problem)


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


@dataclass(frozen=True)
class Chosen(Checked):
    mode: Annotated[str, OneOf(("unroll", "last"))] = "unroll"


def test_a_choice_is_one_of_its_strings():
    assert Chosen("last").mode == "last"
    with pytest.raises(ValueError, match="^mode must be one of unroll, last, got 'full'$"):
        Chosen("full")


def test_one_value_is_checked_against_a_declared_type_as_a_flag_is():
    assert value_problem(Count, 3) is None and value_problem(Count | None, None) is None
    assert value_problem(Count, 0) == "must be an integer >= 1, got 0"
    assert value_problem(Fraction, 1.0) == "must be a finite number in [0, 1), got 1.0"
    assert declared_problem(Declared, "seed", -2) == "seed must be an integer >= 0, got -2"
    assert value_problem(int, -5) is None  # no declaration: anything


@pytest.mark.parametrize("rule, allowed, refused, text", [
    (Range(int, 0, 1000), (0, 1000), (-1, 1001), "an integer in [0, 1000]"),
    (Range(float, 0, 1, low_open=True), (1, 0.5), (0, 1.5), "a finite number in (0, 1]"),
    (Range(float, high=1), (-5, 1), (1.5,), "a finite number <= 1"),
    (Range(float, high=1, high_open=True), (-5, 0.9), (1,), "a finite number < 1"),
    (Range(float), (-1e9, 0), (float("inf"),), "a finite number"),
])
def test_each_bound_is_included_unless_open_and_said_so(rule, allowed, refused, text):
    assert all(rule.problem(value) is None for value in allowed)
    assert all(rule.problem(value) == f"must be {text}, got {value!r}" for value in refused)
