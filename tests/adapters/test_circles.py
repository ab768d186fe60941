"""adapters/circles.py: where the refiner sits in the circles autoencoder (between G and F,
z from G's flattened features, the features G's 2 x 2 cells), S0 detached as the official
code detaches it, and the refiner's own seed. The checks every adapter shares are
tests/adapters/test_adapters.py's (with tests/adapters/cases/circles.py)."""
import dataclasses

import pytest
import torch

from adapters import circles as adapter
from ported import circles
from refiners.descent import DescentSettings
from refiners.slot_attention import SlotAttentionSettings
from srn import SetEncoder, SetRefiner
from tests.adapters.cases.circles import MODEL, autoencoder, images

SRN = DescentSettings("srn", steps=2, inner_lr=0.1, momentum=0.5, hidden=16, embedding=12, pieces=20, seed=0)


def with_refiner(settings, detach_initial_set=False) -> circles.CircleAutoencoder:
    return autoencoder(adapter.install_on_construction(circles, settings, detach_initial_set))


def test_the_refiner_sits_between_g_and_f_with_z_from_gs_features():
    model = with_refiner(SRN)
    assert isinstance(model.refiner, SetRefiner) and isinstance(model.refiner.encoder, SetEncoder)
    assert model.embed.in_features == 64 and model.embed.out_features == 12
    assert (model.refiner.steps, model.refiner.inner_lr, model.refiner.momentum) == (2, 0.1, 0.5)
    features, initial = model.generator(images())
    torch.testing.assert_close(model.encode(images()), model.refiner(initial, model.embed(features)).set)
    assert not torch.allclose(model.encode(images()), initial)
    reconstruction, parts, elements = model(images())
    assert elements.shape == (4, MODEL["set_size"], 10) and parts.shape == (4, MODEL["set_size"], 3, 64, 64)
    torch.testing.assert_close(model.decoder(elements)[0], reconstruction)


def test_a_kind_without_z_attends_over_the_cells_of_gs_last_feature_map():
    model = with_refiner(SlotAttentionSettings("slot-attention", seed=0))
    assert model.embed is None
    _, initial = model.generator(images())
    cells = model.generator.convs[:-1](images()).flatten(2).transpose(1, 2)  # [B, 4, C], before G flattens it
    torch.testing.assert_close(model.encode(images()), model.refiner(initial, None, features=cells).set)


def test_a_detached_initial_set_stops_only_the_gradient_through_s0():
    gradients, outputs = {}, {}
    for detach in (False, True):
        model = with_refiner(SRN, detach_initial_set=detach)
        outputs[detach] = model(images())[0]
        (outputs[detach] - images()).pow(2).sum().backward()
        gradients[detach] = {name: p.grad for name, p in model.named_parameters()}
    torch.testing.assert_close(outputs[True], outputs[False])  # the same forward pass
    assert with_refiner(SRN).detach_initial_set is False  # ours by default
    no_gradient = [name for name, g in gradients[True].items() if g is None or not g.abs().sum() > 0]
    assert no_gradient == ["generator.to_element.weight", "generator.to_element.bias"]
    # G's convolutions still learn through z, but no longer also through S0
    assert not torch.allclose(gradients[True]["generator.convs.0.weight"], gradients[False]["generator.convs.0.weight"])
    assert all(gradients[True][name].abs().sum() > 0 for name in ("decoder.element.project.0.weight", "embed.weight"))


@pytest.mark.parametrize("seed", [0, 3])
def test_the_refiner_arm_starts_from_the_baselines_g_and_f_and_leaves_the_random_stream_where_it_is(seed):
    baseline = autoencoder()
    baseline_next = torch.rand(1)
    refined = with_refiner(dataclasses.replace(SRN, seed=seed))
    refined_next = torch.rand(1)
    shared, state = baseline.state_dict(), refined.state_dict()
    assert {name.split(".")[0] for name in set(state) - set(shared)} == {"refiner", "embed"}
    assert all(torch.equal(state[name], value) for name, value in shared.items())
    assert torch.equal(refined_next, baseline_next)


def test_without_an_embedding_width_z_takes_gs_feature_count():
    model = with_refiner(dataclasses.replace(SRN, embedding=None))
    assert model.embed.out_features == model.generator.feature_count == 64
    assert model.refiner.encoder(torch.randn(2, 9, 10)).shape == (2, 64)
