"""Every registered refiner kind, the same checks (as timm tests every model of its
registry): it builds from its settings, answers the kinds' call with a set of the same
shape, every parameter gets a gradient, it is reproducible from its seed, and each of its
settings has a flag with help in every runner."""
from dataclasses import fields

import pytest
import torch

from adapters.contract import build_refiner, refiner_rng
from refiners.kind import Refined
from refiners.registry import KINDS
from runners.common.cli import ArgumentParser, add_common_arguments

REQUIRED = {"srn": dict(steps=2, inner_lr=0.1), "grn": dict(steps=2, inner_lr=0.1)}  # what has no default


def settings_of(name, **values):
    return KINDS[name].settings(kind=name, **{**REQUIRED.get(name, {}), **values})


def refine(name, seed=0, **values):
    with refiner_rng(seed):
        refiner = build_refiner(settings_of(name, **values),
                                element_dim=6, embedding_dim=5, feature_dim=7)
    generator = torch.Generator().manual_seed(1)
    s0 = torch.randn(3, 4, 6, generator=generator, requires_grad=True)
    z = torch.randn(3, 5, generator=generator, requires_grad=True) if KINDS[name].uses_embedding else None
    features = torch.randn(3, 8, 7, generator=generator, requires_grad=True)
    mask = torch.tensor([[True] * 4, [True] * 3 + [False], [True] * 2 + [False] * 2])
    return refiner, refiner(s0, z, mask, features=features, feature_mask=torch.ones(3, 8, dtype=torch.bool)), s0


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_refines_a_set_and_every_parameter_gets_a_gradient(name):
    refiner, refined, s0 = refine(name)
    assert isinstance(refined, Refined) and refined.set.shape == s0.shape
    assert (refined.edges is not None) == KINDS[name].refines_edges
    assert not torch.allclose(refined.set, s0)
    (refined.set.pow(2).sum() + (0 if refined.edges is None else refined.edges.sum())).backward()
    missing = [key for key, parameter in refiner.named_parameters() if parameter.grad is None
               or not parameter.grad.abs().sum() > 0]
    assert missing == [] and s0.grad.abs().sum() > 0


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_is_drawn_from_its_seed_alone(name):
    first, second, other = (refine(name, seed)[0] for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


@pytest.mark.parametrize("name", KINDS)
def test_every_setting_of_every_kind_has_a_flag_with_help(name):
    kind = KINDS[name]
    assert [field.name for field in fields(kind.settings)][0] == "kind" and "seed" not in kind.setting_names()
    parser = ArgumentParser()
    add_common_arguments(parser, "toy")
    flags = {option: action for action in parser._actions for option in action.option_strings}
    assert kind.flag in flags
    for setting in kind.setting_names():
        flag = "--" + setting.replace("_", "-")
        assert flag in flags and name in flags[flag].help, setting


@pytest.mark.parametrize("name", KINDS)
def test_every_kinds_summary_names_its_steps_and_its_schedule(name):
    """A report's first line names each refiner arm's settings (``summary``) for every kind."""
    plain, scheduled = settings_of(name, steps=4), settings_of(name, steps=4, schedule=[[0, 4], [100, 0]])
    assert "4" in plain.summary() and "schedule" not in plain.summary()
    assert scheduled.summary() == f"{plain.summary()}, schedule 0:4,100:0"
