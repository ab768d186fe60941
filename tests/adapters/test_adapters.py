"""Every registered adapter and refiner kind, the same checks (as timm tests every model of
its registry): forward and backward through the upstream's own loss, every refiner parameter
gets a gradient, zero inner steps reproduce the upstream baseline bit for bit, the refiner's
parameters come from its own seed without drawing from the upstream's random stream, both
entry points give the same model, and evaluation runs under no_grad. Registering an adapter
in adapters/registry.py without a case in tests/adapters/cases/ fails here, and every kind
registered in refiners/registry.py is tested in every adapter that can take it."""
import contextlib
import dataclasses
import importlib
from pathlib import Path

import pytest
import torch

from adapters.registry import ADAPTERS
from refiners.schedule import fixed_steps

CASES = {
    (case.upstream, case.kind): case
    for path in sorted((Path(__file__).parent / "cases").glob("*.py"))
    for case in importlib.import_module(f"tests.adapters.cases.{path.stem}").CASES
}
REGISTERED = [(name, kind) for name, adapter in ADAPTERS.items() for kind in adapter.kinds()]


def test_every_registered_adapter_and_kind_has_a_case():
    assert sorted(CASES) == sorted(REGISTERED)
    assert {upstream for upstream, _ in REGISTERED} == set(ADAPTERS)


@pytest.fixture(params=REGISTERED, ids=lambda entry: f"{entry[0]}-{entry[1]}")
def case(request):
    return CASES[request.param]


def with_steps(case, steps: int, seed: int = 1):
    return dataclasses.replace(case.settings, steps=steps, seed=seed)


@pytest.mark.slow
def test_every_refiner_parameter_gets_a_gradient(case):
    model, refiner = case.make(with_steps(case, 2))
    loss = case.loss(model.train())
    assert torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in refiner.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_zero_steps_reproduce_the_baseline_bit_for_bit(case):
    model, _ = case.make(with_steps(case, 0))
    baseline = case.make_baseline()
    assert torch.equal(case.loss(model.train()), case.loss(baseline.train()))


def test_refinement_changes_the_output(case):
    refined, _ = case.make(with_steps(case, 2))
    baseline = case.make_baseline()
    with torch.no_grad():
        assert not torch.equal(case.output(refined.eval()), case.output(baseline.eval()))


def test_the_refiner_comes_from_its_own_seed(case):
    """Same seed: same refiner; another seed: another; and building it draws nothing from
    the upstream's random stream (each case seeds torch before building its model)."""
    (_, first), (_, second), (_, other) = (case.make(with_steps(case, 1, seed)) for seed in (5, 5, 6))
    after_refined = torch.random.get_rng_state()
    pairs = list(zip(first.parameters(), second.parameters()))
    assert pairs and all(torch.equal(a, b) for a, b in pairs)
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))
    case.make_baseline()
    assert torch.equal(torch.random.get_rng_state(), after_refined)


def test_install_on_a_built_model_is_install_on_construction(case):
    """``install`` into a built baseline gives the refiner ``install_on_construction`` builds."""
    settings = with_steps(case, 2)
    _, constructed = case.make(settings)
    installed = ADAPTERS[case.upstream].install(case.target(case.make_baseline()), settings)
    assert [name for name, _ in installed.named_parameters()] == [name for name, _ in constructed.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(installed.parameters(), constructed.parameters()))


def test_a_schedule_counts_the_optimizer_steps_of_the_upstreams_training(case):
    """One optimizer step counts one training step, however often the upstream's loss
    calls the refiner (C-SWM: twice); then the schedule's 0 steps run, as fixed_steps(0)
    runs them, and not the 2 steps it trained with."""
    model, refiner = case.make(dataclasses.replace(with_steps(case, 2), schedule=[[1, 0]]))
    counted = next(module for module in refiner.modules() if hasattr(module, "step_counter"))
    case.loss(model.train()).backward()
    torch.optim.SGD(model.parameters(), lr=0.0).step()
    assert counted.steps == 2 and int(counted.step_counter.training_step) == 1

    def output(steps=None):
        torch.manual_seed(1)  # the same random stream for each (CLUTRR's upstream draws in its forward)
        with torch.no_grad(), (contextlib.nullcontext() if steps is None else fixed_steps(model, steps)):
            return case.output(model.eval())

    scheduled = output()
    assert counted.steps == 0
    assert torch.equal(scheduled, output(0)) and not torch.equal(scheduled, output(2))


def test_eval_runs_under_no_grad(case):
    model, _ = case.make(with_steps(case, 2))
    with torch.no_grad():
        output = case.output(model.eval())
    assert not output.requires_grad and torch.isfinite(output).all()
