"""refiners/schedule.py: a schedule's declaration and text, the step count it gives at each
training step, the training steps counted from the optimizer steps over the refiner (and
kept in its state_dict), fixed step counts for an evaluation, and the step counts of a
step-count curve; for every registered kind."""
import pytest
import torch

from adapters.contract import build_refiner, refiner_rng
from refiners.registry import KINDS
from refiners.schedule import IncreasingSchedule, fixed_steps, step_counts, steps_at
from tests.refiners.test_registry import settings_of

RULE = IncreasingSchedule()


@pytest.mark.parametrize("value", [[[0, 10]], [[0, 10], [5, 4], [9, 0]], ((3, 2), (4, 1000))])
def test_increasing_schedules_are_allowed(value):
    assert RULE.problem(value) is None


@pytest.mark.parametrize("value, message", [
    ([], "non-empty list of [training_step, steps] pairs"),
    ([[0, 1, 2]], "pairs"),
    ([[0, 1.5]], "pairs of integers"),
    ([[0, True]], "pairs of integers"),
    ("0:1", "pairs"),
    ([[0, 5], [0, 3]], "strictly increasing"),
    ([[4, 5], [2, 3]], "strictly increasing"),
    ([[-1, 5]], "training steps >= 0"),
    ([[0, 5], [3, -1]], "step counts in [0, 1000]"),
    ([[0, 1001]], "step counts in [0, 1000]"),
])
def test_other_values_are_refused_with_the_reason(value, message):
    assert message in RULE.problem(value)


def test_the_text_form_reads_pairs_and_refuses_anything_else():
    assert RULE.parse("0:10,2000:5,4000:0") == [[0, 10], [2000, 5], [4000, 0]]
    for text in ("0:10,5", "0-10", "a:1", ""):
        with pytest.raises(ValueError, match="TRAINING_STEP:STEPS"):
            RULE.parse(text)


def test_the_step_count_is_the_last_entrys_at_or_before_the_training_step():
    schedule = [[2, 5], [4, 1]]
    assert [steps_at(schedule, step, 9) for step in range(6)] == [9, 9, 5, 5, 1, 1]
    assert steps_at(None, 100, 9) == 9


def test_the_step_counts_of_a_curve_are_0_1_half_and_all():
    assert step_counts(10) == [0, 1, 5, 10]
    assert step_counts(3) == [0, 1, 3]
    assert step_counts(1) == [0, 1]
    assert step_counts(0) == [0]


SMALL = {"srn": dict(hidden=8, pieces=4), "grn": dict(hidden=8, pieces=4), "slot-attention": dict(mlp_hidden=8)}


def build(name, **values):
    with refiner_rng(0):
        return build_refiner(settings_of(name, **{**SMALL.get(name, {}), **values}), element_dim=6, embedding_dim=5,
                             feature_dim=7)


def call(refiner, name):
    generator = torch.Generator().manual_seed(1)
    s0 = torch.randn(3, 4, 6, generator=generator, requires_grad=True)
    z = torch.randn(3, 5, generator=generator) if KINDS[name].uses_embedding else None
    return refiner(s0, z, features=torch.randn(3, 8, 7, generator=generator))


def train_steps(refiner, name, optimizer, count, calls_per_step=1):
    """``count`` optimizer steps, each after ``calls_per_step`` calls; the steps run at each."""
    ran = []
    for _ in range(count):
        optimizer.zero_grad()
        loss = sum(call(refiner, name).set.pow(2).sum() for _ in range(calls_per_step))
        ran.append(refiner.steps)
        loss.backward()
        optimizer.step()
    return ran


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_follows_its_schedule_over_the_optimizer_steps(name):
    refiner = build(name, steps=3, schedule=[[2, 2], [3, 0]])
    optimizer = torch.optim.SGD(refiner.parameters(), lr=1e-3)
    assert train_steps(refiner, name, optimizer, 5) == [3, 3, 2, 0, 0]
    assert int(refiner.step_counter.training_step) == 5


@pytest.mark.parametrize("name", KINDS)
def test_a_training_step_is_an_optimizer_step_however_often_the_refiner_is_called(name):
    """C-SWM calls the refiner twice per training step (the states and the next states);
    an optimizer that does not update the refiner counts nothing."""
    refiner = build(name, steps=3, schedule=[[1, 1], [2, 0]])
    optimizer = torch.optim.SGD(refiner.parameters(), lr=1e-3)
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
    other.step()
    assert train_steps(refiner, name, optimizer, 3, calls_per_step=2) == [3, 1, 0]
    assert int(refiner.step_counter.training_step) == 3


@pytest.mark.parametrize("name", KINDS)
def test_a_resumed_refiner_follows_the_schedule_from_where_it_was(name):
    first = build(name, steps=3, schedule=[[2, 1]])
    train_steps(first, name, torch.optim.SGD(first.parameters(), lr=1e-3), 2)
    resumed = build(name, steps=3, schedule=[[2, 1]])
    call(resumed, name)
    assert resumed.steps == 3
    resumed.load_state_dict(first.state_dict())
    call(resumed, name)
    assert resumed.steps == 1 and int(resumed.step_counter.training_step) == 2


@pytest.mark.parametrize("name", KINDS)
def test_fixed_steps_override_the_schedule_for_a_block_only(name):
    refiner = build(name, steps=3, schedule=[[0, 2]])
    with fixed_steps(torch.nn.Sequential(refiner), 0):
        fixed = call(refiner, name)
        assert refiner.steps == 0
    call(refiner, name)
    assert refiner.steps == 2
    with torch.no_grad():
        assert torch.equal(fixed.set, build(name, steps=0)(*_inputs(name)).set)


def _inputs(name):
    generator = torch.Generator().manual_seed(1)
    s0 = torch.randn(3, 4, 6, generator=generator)
    z = torch.randn(3, 5, generator=generator) if KINDS[name].uses_embedding else None
    return s0, z, None, torch.randn(3, 8, 7, generator=generator)


def test_without_a_schedule_the_refiners_own_steps_stand_and_nothing_is_counted():
    """A runner may set a refiner's steps itself (circles' curriculum); fixed_steps gives them back."""
    refiner = build("srn", steps=3)
    optimizer = torch.optim.SGD(refiner.parameters(), lr=1e-3)
    refiner.steps = 1
    assert train_steps(refiner, "srn", optimizer, 2) == [1, 1]
    with fixed_steps(refiner, 2):
        call(refiner, "srn")
        assert len(refiner.inner_losses) == 2
    call(refiner, "srn")
    assert len(refiner.inner_losses) == 1 and int(refiner.step_counter.training_step) == 0


@pytest.mark.parametrize("name", KINDS)
def test_a_model_saved_before_step_counters_loads_without_a_schedule_but_not_with_one(name):
    """Checkpoints written before refiners counted training steps have no count: a refiner
    without a schedule does not use it; one with a schedule would resume at a wrong step."""
    state = build(name, steps=3).state_dict()
    old = {key: value for key, value in state.items() if not key.endswith("step_counter.training_step")}
    assert len(old) == len(state) - 1
    plain = build(name, steps=3)
    plain.load_state_dict(old)
    assert all(torch.equal(plain.state_dict()[key], value) for key, value in old.items())
    with pytest.raises(RuntimeError, match="Missing key.*step_counter.training_step"):
        build(name, steps=3, schedule=[[2, 1]]).load_state_dict(old)
