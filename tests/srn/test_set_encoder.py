import torch
from torch import nn

from srn import SetEncoder


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
