"""Every adapter, the same checks (as timm tests every model): forward and backward through
the upstream's own loss, every refiner parameter gets a gradient, zero inner steps
reproduce the upstream baseline bit for bit, and evaluation runs under no_grad."""
import importlib
from pathlib import Path

import pytest
import torch

CASES = [
    case
    for path in sorted((Path(__file__).parent / "cases").glob("*.py"))
    for case in importlib.import_module(f"tests.adapters.cases.{path.stem}").CASES
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request):
    return request.param


def test_every_refiner_parameter_gets_a_gradient(case):
    model, refiner = case.make(2)
    loss = case.loss(model.train())
    assert torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in refiner.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_zero_steps_reproduce_the_baseline_bit_for_bit(case):
    model, _ = case.make(0)
    baseline = case.make_baseline()
    assert torch.equal(case.loss(model.train()), case.loss(baseline.train()))


def test_refinement_changes_the_output(case):
    refined, _ = case.make(2)
    baseline = case.make_baseline()
    with torch.no_grad():
        assert not torch.equal(case.output(refined.eval()), case.output(baseline.eval()))


def test_eval_runs_under_no_grad(case):
    model, _ = case.make(2)
    with torch.no_grad():
        output = case.output(model.eval())
    assert not output.requires_grad and torch.isfinite(output).all()
