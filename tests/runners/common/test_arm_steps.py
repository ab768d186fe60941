"""Every paper preset runs one step: runners/<name>_steps.py builds each arm of each runner
from configs/<runner>.yaml's paper preset (paper widths, momentum 0.5, circles' detached S0
and first-epoch inner steps, the GRN at paper width) at batch 2 on the CPU, on real data.
One training step must give a finite loss and a non-zero, finite gradient to every
parameter but those the design leaves without one; with 0 inner steps every refiner arm
must train as the baseline, bit for bit."""
import pytest
import torch

from runners.common.arm_steps import ArmSteps, upstream_parameters
from runners.registry import RUNNERS, arm_builder
from tests import clutrr_world

REFINER_KINDS = {"clutrr": ("srn", "grn")}  # the others: srn
# without gradient by the paper preset's design (names by prefix): circles detaches S0
# (detach_initial_set: true, as the official code), so G's last layer, which only makes S0,
# never trains
FROZEN = {("circles", "srn"): ("generator.to_element.",)}
# with 0 inner steps the refiner's parts get none either; and with S0 detached, z unused, G none
FROZEN_WITHOUT_STEPS = {"circles": ("generator.",)}
# the GRN arm's optimiser differs from the baseline's: its l2 penalty is 5e-6, not 1e-4 (section 3.3)
OWN_OPTIMISER = {("clutrr", "grn")}
CSWM_EPISODES = 4  # the cswm_data_dir fixture's training set
CLUTRR_STORIES = 39  # a subset of its own (tests/runners/test_clutrr.py trains on 48); 31 training stories
BATCHES_PER_EPOCH = {
    "sort_of_clevr": 2 * (100_000 * 10 // 2),  # relational and non-relational batches of 10 questions per image
    "circles": 64_000 // 2,
    "cswm": -(-CSWM_EPISODES * 10 // 2),  # train.py's DataLoader over 10 transitions per episode
    "clutrr": -(-int(CLUTRR_STORIES * 0.8) // 2),  # the upstream's 80% training split, the last batch partial
}


@pytest.fixture
def build(request):
    """runner -> builder of its arms from the paper preset at batch 2 on the CPU (C-SWM:
    the cswm_data_dir fixture's episodes; CLUTRR: a subset of the shared data)."""
    def built(runner: str, refiner_steps: int | None = None) -> dict[str, ArmSteps]:
        data = {"cswm": dict(data_dir=request.getfixturevalue("cswm_data_dir"), train_size=CSWM_EPISODES),
                "clutrr": dict(data_dir=clutrr_world.data_dir(), clutrr_source=str(clutrr_world.shared_zip()),
                               train_size=CLUTRR_STORIES)}.get(runner, {})
        options = {"data_dir": None, "clutrr_source": None, **data}
        return arm_builder(runner)("paper", torch.device("cpu"), batch_size=2, refiner_steps=refiner_steps,
                                          **options)
    return built


def named(prefixes: tuple[str, ...], arm: ArmSteps) -> set[str]:
    """The arm's parameter names under ``prefixes``; each prefix must name some."""
    names = [name for name, _ in arm.model.named_parameters()]
    for prefix in prefixes:
        assert any(name.startswith(prefix) for name in names), f"no parameter under {prefix}"
    return {name for name in names if name.startswith(prefixes)}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on two busy cores the steps (CLUTRR's LSTM above all, whose preset
    says threads: 1) take erratic times."""
    torch.set_num_threads(1)  # tests/conftest.py restores the count


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_every_arm_of_the_paper_preset_trains_one_step(runner, build):
    arms = build(runner)
    assert list(arms) == ["baseline", *REFINER_KINDS.get(runner, ("srn",))]
    for name, arm in arms.items():
        expected = named(FROZEN[runner, name], arm) if (runner, name) in FROZEN else set()
        assert arm.frozen == expected
        assert arm.batches_per_epoch == BATCHES_PER_EPOCH[runner]
        loss = arm.train_step()
        assert loss.dim() == 0 and torch.isfinite(loss)
        for parameter_name, parameter in arm.model.named_parameters():
            gradient = parameter.grad
            if parameter_name in arm.frozen:
                assert gradient is None or not gradient.any(), f"{name}: {parameter_name} has a gradient"
            else:
                assert gradient is not None and gradient.any(), f"{name}: {parameter_name} has no gradient"
                assert torch.isfinite(gradient).all(), f"{name}: {parameter_name}'s gradient is not finite"
        assert torch.isfinite(arm.eval_step()).all()
        assert not any(module.training for module in list(arm.model.modules())[1:])  # eval_step ran in eval mode
    if runner == "circles":
        assert arms["srn"].model.refiner.steps == 10  # the schedule's first epochs, not refiner.srn.steps (20)


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_zero_inner_steps_train_as_the_baseline_bit_for_bit(runner, build):
    arms = build(runner, refiner_steps=0)
    baseline = arms.pop("baseline")
    base_initial = [parameter.detach().clone() for _, parameter in upstream_parameters(baseline)]
    base_output = baseline.eval_step()  # before the step, which leaves circles' G untrained in the arm
    base_loss = baseline.train_step()
    assert arms
    for kind, arm in arms.items():
        assert arm.frozen == named(arm.refiner_parts + FROZEN_WITHOUT_STEPS.get(runner, ()), arm)
        pairs = list(zip(upstream_parameters(baseline), upstream_parameters(arm), base_initial,
                         strict=True))
        for (_, base), (name, parameter), initial in pairs:
            assert parameter.shape == base.shape and torch.equal(parameter, initial), f"{kind}: {name} initial"
        assert torch.equal(arm.eval_step(), base_output), kind
        assert torch.equal(arm.train_step(), base_loss), kind
        for (_, base), (name, parameter), initial in pairs:
            if name in arm.frozen:  # circles: G, whose S0 is detached and z unused, stays as built
                assert parameter.grad is None and torch.equal(parameter, initial), f"{kind}: {name} moved"
            else:
                assert torch.equal(parameter.grad, base.grad), f"{kind}: {name}'s gradient"
                if (runner, kind) not in OWN_OPTIMISER:
                    assert torch.equal(parameter, base), f"{kind}: {name} after the step"
        if (runner, kind) in OWN_OPTIMISER:  # the same gradients, another l2 penalty: other weights
            assert not all(torch.equal(parameter, base) for (_, base), (_, parameter), _ in pairs)
