"""The SRN inside the upstream RN: in the upstream's own optimiser, trained by the
upstream's own RN.train_, invisible at 0 inner steps."""
from types import SimpleNamespace

import pytest
import torch

from refiners.descent import DescentSettings
from refiners.schedule import fixed_steps
from adapters.relational_networks import install
from patches import relational_networks
from tests.adapters.cases.relational_networks import BATCH, upstream_batch

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")


def tiny_batch():
    return upstream_batch()


def srn(steps: int) -> DescentSettings:
    return DescentSettings("srn", steps, 0.1, embedding=16, seed=1)


def build(model_module, settings):
    """The upstream RN (weights from seed 0, its own Adam), with the SRN when ``settings``."""
    torch.manual_seed(0)
    model = model_module.RN(SimpleNamespace(batch_size=BATCH, lr=1e-4, cuda=False))
    return model, None if settings is None else install(model, settings)


def test_srn_parameters_join_the_upstream_adam_with_its_settings():
    model_module, _ = tiny_batch()
    model, refiner = build(model_module, srn(2))
    upstream_group, srn_group = model.optimizer.param_groups
    assert [id(p) for p in srn_group["params"]] == [id(p) for p in refiner.parameters()]
    assert {k: v for k, v in srn_group.items() if k != "params"} == {k: v for k, v in upstream_group.items() if k != "params"}
    assert srn_group["lr"] == 1e-4
    in_optimiser = {id(p) for group in model.optimizer.param_groups for p in group["params"]}
    assert in_optimiser == {id(p) for p in model.parameters()}


def test_one_upstream_train_step_gives_every_srn_parameter_a_gradient_and_changes_it():
    model_module, tensors = tiny_batch()
    model, refiner = build(model_module, srn(2))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    model.train_(*tensors)
    srn_names = [f"refiner.{name}" for name, _ in refiner.named_parameters()]
    parameters = dict(model.named_parameters())
    assert len(srn_names) == 9  # embed (2), set encoder MLP (6), FSPool (1)
    assert [n for n in srn_names if parameters[n].grad is None or not parameters[n].grad.abs().sum() > 0] == []
    assert [n for n in srn_names if torch.equal(parameters[n], before[n])] == []
    assert not torch.equal(parameters["conv.conv1.weight"], before["conv.conv1.weight"])


def test_zero_steps_are_the_baseline_forward_bit_for_bit():
    model_module, (images, questions, _) = tiny_batch()
    baseline, _ = build(model_module, None)
    refined, refiner = build(model_module, srn(0))
    assert all(torch.equal(a, b) for a, b in zip(baseline.state_dict().values(), refined.state_dict().values()))
    for model in (baseline, refined):
        model.train()
    torch.manual_seed(3)
    expected = baseline(images, questions)
    torch.manual_seed(3)
    assert torch.equal(refined(images, questions), expected)


def test_fixed_steps_switch_the_refinement_off_for_a_block():
    model_module, (images, questions, _) = tiny_batch()
    baseline, _ = build(model_module, None)
    refined, refiner = build(model_module, srn(3))
    with relational_networks.output_dropout_off(baseline), torch.no_grad():
        expected = baseline.eval()(images, questions)
        with fixed_steps(refined, 0):
            assert torch.equal(refined.eval()(images, questions), expected)
        assert not torch.equal(refined(images, questions), expected)
        assert refiner.refiner.steps == 3


def test_a_checkpoint_saved_when_the_refiner_was_model_srn_loads_where_it_is_now():
    model_module, _ = tiny_batch()
    trained, _ = build(model_module, srn(2))
    with torch.no_grad():
        for parameter in trained.refiner.parameters():
            parameter.add_(1.0)
    saved_then = {key.replace("refiner.", "srn.", 1) if key.startswith("refiner.") else key: value
                  for key, value in trained.state_dict().items()}
    assert any(key.startswith("srn.") for key in saved_then)
    fresh, _ = build(model_module, srn(2))
    fresh.load_state_dict(saved_then)
    assert all(torch.equal(value, trained.state_dict()[key]) for key, value in fresh.state_dict().items())
