import dataclasses

import pytest
import torch
from torch import nn

from refiners.descent import DescentSettings
from refiners.slot_attention import SlotAttentionSettings
from runners.circles_models import (DECODER_WIDTHS, GENERATOR_WIDTHS, ElementDecoder, SetGenerator,
                                    SetImageDecoder, build_autoencoder)
from srn import SetEncoder, SetRefiner

TINY_G, TINY_F = (4, 8, 8, 16), (16, 8, 8)
SRN = DescentSettings("srn", steps=2, inner_lr=0.1, momentum=0.5, hidden=16, embedding=12, pieces=20, seed=0)


@pytest.mark.parametrize("set_size,group_width", [(9, 228), (16, 128)])
def test_generator_at_paper_widths_groups_the_2048_features(set_size, group_width):
    torch.manual_seed(0)
    generator = SetGenerator(set_size, element_dims=10, widths=GENERATOR_WIDTHS)
    features, elements = generator(torch.rand(3, 3, 64, 64))
    assert features.shape == (3, 2048) and elements.shape == (3, set_size, 10)
    assert generator.group_width == group_width
    padded = torch.cat([features, features.new_zeros(3, set_size * group_width - 2048)], dim=1)
    torch.testing.assert_close(elements, generator.to_element(padded.view(3, set_size, group_width)))
    convs = [m for m in generator.convs if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.bias) for c in convs] == [
        (3, 64, 2, None), (64, 128, 2, None), (128, 256, 2, None), (256, 512, 4, None)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.convs) == 3


def test_element_decoder_at_paper_widths_draws_64x64_images():
    decoder = ElementDecoder(element_dims=10, widths=DECODER_WIDTHS)
    assert decoder(torch.randn(2, 10)).shape == (2, 3, 64, 64)
    assert decoder.project[0].out_features == 1024 * 16
    assert [m.out_channels for m in decoder.upsample if isinstance(m, nn.ConvTranspose2d)] == [512, 256, 3]


@pytest.mark.parametrize("set_size", [9, 16])
@pytest.mark.parametrize("srn", [None, SRN], ids=["baseline", "srn"])
def test_autoencoder_shapes(set_size, srn):
    model = build_autoencoder(set_size, 10, TINY_G, TINY_F, srn)
    reconstruction, parts, elements = model(torch.rand(2, 3, 64, 64))
    assert reconstruction.shape == (2, 3, 64, 64) and parts.shape == (2, set_size, 3, 64, 64)
    assert elements.shape == (2, set_size, 10)
    torch.testing.assert_close(parts.sum(dim=1), reconstruction)
    assert 0 <= reconstruction.min() and reconstruction.max() <= 1
    if srn is None:
        assert model.refiner is None and model.embed is None
    else:
        assert isinstance(model.refiner, SetRefiner) and isinstance(model.refiner.encoder, SetEncoder)
        assert model.embed.in_features == 64 and model.embed.out_features == 12
        assert model.refiner.inner_losses.shape == (2,)
        assert (model.refiner.steps, model.refiner.inner_lr, model.refiner.momentum) == (2, 0.1, 0.5)


@pytest.mark.parametrize("training", [True, False])
def test_decoder_is_invariant_to_the_order_of_elements(training):
    torch.manual_seed(0)
    decoder = SetImageDecoder(element_dims=10, widths=TINY_F).train(training)
    elements = torch.randn(3, 9, 10)
    order = torch.randperm(9)
    image, parts = decoder(elements)
    image_permuted, parts_permuted = decoder(elements[:, order])
    torch.testing.assert_close(image_permuted, image)
    torch.testing.assert_close(parts_permuted, parts[:, order])


def test_refined_set_is_the_refiner_applied_to_g_and_its_embedding():
    torch.manual_seed(0)
    model = build_autoencoder(16, 10, TINY_G, TINY_F, SRN)
    images = torch.rand(2, 3, 64, 64)
    features, initial = model.generator(images)
    torch.testing.assert_close(model.encode(images), model.refiner(initial, model.embed(features)).set)
    assert not torch.allclose(model.encode(images), initial)


def test_a_kind_without_z_attends_over_the_cells_of_gs_last_feature_map():
    torch.manual_seed(0)
    model = build_autoencoder(16, 10, TINY_G, TINY_F, SlotAttentionSettings("slot-attention", seed=0))
    assert model.embed is None
    images = torch.rand(2, 3, 64, 64)
    _, initial = model.generator(images)
    feature_map = model.generator.convs[:-1](images)  # [B, C, 2, 2], before G flattens it
    cells = feature_map.flatten(2).transpose(1, 2)  # [B, 4, C]
    torch.testing.assert_close(model.encode(images), model.refiner(initial, None, features=cells).set)


@pytest.mark.parametrize("srn", [None, SRN], ids=["baseline", "srn"])
def test_gradient_reaches_every_parameter(srn):
    torch.manual_seed(0)
    model = build_autoencoder(16, 10, TINY_G, TINY_F, srn)
    images = (torch.rand(4, 3, 64, 64) > 0.9).float()
    reconstruction, _, _ = model(images)
    (reconstruction - images).pow(2).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_detached_initial_set_stops_only_the_gradient_through_s0():
    images = (torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.9).float()
    gradients, outputs = {}, {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = build_autoencoder(16, 10, TINY_G, TINY_F, SRN, detach_initial_set=detach)
        outputs[detach] = model(images)[0]
        (outputs[detach] - images).pow(2).sum().backward()
        gradients[detach] = {name: p.grad for name, p in model.named_parameters()}
    torch.testing.assert_close(outputs[True], outputs[False])  # the same forward pass
    assert build_autoencoder(16, 10, TINY_G, TINY_F, SRN).detach_initial_set is False  # ours by default
    no_gradient = [name for name, g in gradients[True].items() if g is None or not g.abs().sum() > 0]
    assert no_gradient == ["generator.to_element.weight", "generator.to_element.bias"]
    # G's convolutions still learn through z, but no longer also through S0
    assert not torch.allclose(gradients[True]["generator.convs.0.weight"], gradients[False]["generator.convs.0.weight"])
    for name in ("decoder.element.project.0.weight", "embed.weight"):
        assert gradients[True][name].abs().sum() > 0


def initial_weights(seed, refiner):
    torch.manual_seed(seed)
    model = build_autoencoder(16, 10, TINY_G, TINY_F, refiner)
    return model, torch.rand(1)  # the draw after the model's: where the run's random stream goes on


@pytest.mark.parametrize("seed", [0, 3])
def test_srn_arm_starts_from_the_baselines_g_and_f_and_leaves_the_random_stream_where_it_is(seed):
    baseline, baseline_next = initial_weights(seed, None)
    srn, srn_next = initial_weights(seed, dataclasses.replace(SRN, seed=seed))
    shared = baseline.state_dict()
    refined = srn.state_dict()
    assert {name.split(".")[0] for name in set(refined) - set(shared)} == {"refiner", "embed"}
    for name, value in shared.items():
        assert torch.equal(refined[name], value), name
    assert torch.equal(srn_next, baseline_next)


def test_the_refiner_and_z_projection_are_drawn_from_the_refiner_seed_alone():
    def refiner_weights(seed, refiner_seed):
        model, _ = initial_weights(seed, dataclasses.replace(SRN, seed=refiner_seed))
        return [p for name, p in model.named_parameters() if name.startswith(("refiner.", "embed."))]

    for same, other in zip(refiner_weights(0, 5), refiner_weights(1, 5)):
        assert torch.equal(same, other)
    assert not all(torch.equal(a, b) for a, b in zip(refiner_weights(0, 5), refiner_weights(0, 6)))
    with pytest.raises(ValueError, match="seed is not set"):
        build_autoencoder(16, 10, TINY_G, TINY_F, dataclasses.replace(SRN, seed=None))


def test_without_an_embedding_width_z_takes_gs_feature_count():
    model = build_autoencoder(16, 10, TINY_G, TINY_F, dataclasses.replace(SRN, embedding=None))
    assert model.embed.out_features == model.generator.feature_count == 64
    assert model.refiner.encoder(torch.randn(2, 16, 10)).shape == (2, 64)
