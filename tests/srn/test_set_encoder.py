import torch
from torch import nn

from srn import FSPool, SetEncoder
from tests.srn import reference


def test_shapes_and_layers():
    encoder = SetEncoder(in_dim=4, out_dim=7, hidden=16, n_pieces=20)
    assert encoder(torch.randn(5, 9, 4)).shape == (5, 7)
    linears = [m for m in encoder.mlp if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4, 16), (16, 16), (16, 7)]
    assert encoder.pool.weight.shape == (7, 21)


def test_divides_activations_by_set_size_before_pooling():
    torch.manual_seed(0)
    encoder = SetEncoder(3, 5, hidden=8)
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(encoder(x), encoder.pool(encoder.mlp(x) / 6))


def test_permutation_invariant():
    encoder = SetEncoder(3, 5, hidden=8)
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(encoder(x[:, torch.randperm(6)]), encoder(x))


def test_padding_changes_nothing():
    encoder = SetEncoder(3, 5, hidden=8)
    x = torch.randn(2, 4, 3)
    padded = torch.cat([x, torch.randn(2, 3, 3)], dim=1)
    mask = torch.tensor([[1] * 4 + [0] * 3] * 2, dtype=torch.bool)
    torch.testing.assert_close(encoder(padded, mask), encoder(x))


def test_matches_reference_with_mask_dividing_by_the_number_of_real_elements():
    """tests/srn/reference.py's SetEncoder in float64: the MLP on each real element divided
    by the number of real elements (6, 3, 1, here never the padded size 6), then FSPool over
    the real ones; junk in the padding. Values and the gradients with respect to the set and
    every parameter."""
    torch.manual_seed(0)
    encoder = SetEncoder(3, 5, hidden=8).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    mask = torch.tensor([[1] * 6, [0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    x[~mask] = 1e4
    x.requires_grad_(True)
    got, expected = encoder(x, mask), reference.set_encoder(encoder, x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(encoder(x), reference.set_encoder(encoder, x), rtol=1e-12, atol=1e-12)
    weights = torch.randn(got.shape, dtype=torch.float64)
    wrt = [x, *encoder.parameters()]
    grads = torch.autograd.grad((got * weights).sum(), wrt)
    expected_grads = torch.autograd.grad((expected * weights).sum(), wrt, allow_unused=True)
    for g, e, t in zip(grads, expected_grads, wrt):
        torch.testing.assert_close(g, torch.zeros_like(t) if e is None else e, rtol=1e-12, atol=1e-12)


def test_the_set_size_scales_the_pooled_activations_by_hand():
    """With a one-piece FSPool whose knots are both 1 (a plain sum) and an MLP whose output
    is a constant c, the encoding is n * (c / n) = c, whatever the number n of real elements:
    the division is by n, not by the padded size and not by n twice."""
    encoder = SetEncoder(2, 1, hidden=4, n_pieces=1).double()
    with torch.no_grad():
        last = encoder.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(3.0)
        encoder.pool.weight.fill_(1.0)
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    torch.testing.assert_close(encoder(x, mask), torch.full((3, 1), 3.0, dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(encoder(x), torch.full((3, 1), 3.0, dtype=torch.float64), rtol=1e-12, atol=0)


def test_the_defaults_are_the_papers_h_agg():
    """Appendix B-E: H_agg's MLP is 512 wide and its FSPool has 20 pieces."""
    encoder = SetEncoder(3, 4)
    assert [layer.out_features for layer in encoder.mlp if isinstance(layer, nn.Linear)] == [512, 512, 4]
    assert encoder.pool.n_pieces == 20 and FSPool(4).n_pieces == 20 and FSPool(4).weight.shape == (4, 21)
