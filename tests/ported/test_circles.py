"""The ported circles autoencoder (ported/circles.py, appendix B.1): G's grouping of its
features into a set, F's per-element images and their softmax mix, at the paper's widths
and at tiny ones."""
import pytest
import torch
from torch import nn

from ported.circles import DECODER_WIDTHS, GENERATOR_WIDTHS, ElementDecoder, SetGenerator, SetImageDecoder, build_autoencoder

TINY_G, TINY_F = (4, 8, 8, 16), (16, 8, 8)


@pytest.mark.parametrize("set_size,group_width", [(9, 228), (16, 128)])
def test_generator_at_paper_widths_groups_the_2048_features(set_size, group_width):
    torch.manual_seed(0)
    generator = SetGenerator(set_size, element_dims=10, widths=GENERATOR_WIDTHS)
    features, elements = generator(torch.rand(3, 3, 64, 64))
    assert features.shape == (3, 2048) and elements.shape == (3, set_size, 10)
    assert generator.group_width == group_width and (generator.element_dims, generator.channels) == (10, 512)
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
def test_the_image_is_the_sum_of_the_elements_parts_and_the_set_is_gs(set_size):
    torch.manual_seed(0)
    model = build_autoencoder(set_size, 10, TINY_G, TINY_F)
    images = torch.rand(2, 3, 64, 64)
    reconstruction, parts, elements = model(images)
    assert reconstruction.shape == (2, 3, 64, 64) and parts.shape == (2, set_size, 3, 64, 64)
    torch.testing.assert_close(parts.sum(dim=1), reconstruction)
    assert 0 <= reconstruction.min() and reconstruction.max() <= 1
    torch.testing.assert_close(elements, model.generator(images)[1])
    assert model.refiner is None and model.embed is None and model.detach_initial_set is False


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


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_autoencoder(16, 10, TINY_G, TINY_F)
    images = (torch.rand(4, 3, 64, 64) > 0.9).float()
    reconstruction, _, _ = model(images)
    (reconstruction - images).pow(2).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
