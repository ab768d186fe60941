import pytest
import torch

from srn import FSPool
from tests.srn import reference


def loop_reference(pool: FSPool, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """FSPool written as plain loops: sort each channel of the real elements, weight the
    j-th largest by the knot function interpolated at j / (n - 1)."""
    knots = pool.weight.detach().tolist()
    out = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64)
    for b in range(x.shape[0]):
        real = [i for i in range(x.shape[1]) if mask[b, i]]
        n = len(real)
        for c in range(x.shape[2]):
            values = sorted((float(x[b, i, c]) for i in real), reverse=True)
            for j, value in enumerate(values):
                position = 0.0 if n == 1 else j / (n - 1)
                index = position * pool.n_pieces
                left = min(int(index), pool.n_pieces)
                right = min(left + 1, pool.n_pieces)
                frac = index - left
                out[b, c] += value * ((1 - frac) * knots[c][left] + frac * knots[c][right])
    return out


@pytest.fixture
def pool():
    torch.manual_seed(0)
    return FSPool(in_channels=3, n_pieces=5)


def test_matches_loop_reference_with_ragged_sets(pool):
    torch.manual_seed(1)
    x = torch.randn(4, 7, 3)
    mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4, [1] + [0] * 6, [0, 1, 0, 1, 1, 0, 1]], dtype=torch.bool)
    expected = loop_reference(pool, x, mask)
    torch.testing.assert_close(pool(x, mask).double(), expected, rtol=1e-5, atol=1e-5)


def test_no_mask_means_every_element_is_real(pool):
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(pool(x), pool(x, torch.ones(2, 6, dtype=torch.bool)))
    torch.testing.assert_close(pool(x).double(), loop_reference(pool, x, torch.ones(2, 6, dtype=torch.bool)))


def test_single_element_uses_first_knot(pool):
    x = torch.randn(2, 1, 3)
    torch.testing.assert_close(pool(x), x[:, 0] * pool.weight[:, 0])


def test_empty_set_pools_to_zero(pool):
    out = pool(torch.randn(1, 4, 3), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 3))


def test_permutation_invariant(pool):
    x = torch.randn(3, 8, 3)
    mask = torch.rand(3, 8) > 0.3
    perm = torch.randperm(8)
    torch.testing.assert_close(pool(x[:, perm], mask[:, perm]), pool(x, mask))


def test_padded_elements_never_influence_the_result(pool):
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 0]], dtype=torch.bool)
    junk = x.clone()
    junk[~mask] = torch.tensor([1e30, float("nan"), -1e30])
    assert torch.equal(pool(junk, mask), pool(x, mask))
    x.requires_grad_(True)
    pool(x, mask).sum().backward()
    assert torch.all(x.grad[~mask] == 0) and torch.all(x.grad[mask] != 0)


def test_gradient_reaches_every_knot_used():
    pool = FSPool(2, n_pieces=4)
    pool(torch.randn(3, 5, 2)).sum().backward()
    assert torch.all(pool.weight.grad != 0)


def test_rejects_wrong_channel_count(pool):
    with pytest.raises(ValueError, match="expects 3 channels"):
        pool(torch.randn(1, 2, 4))


def test_hand_computed_values_with_padding():
    """Two pieces, knots at t = 0, 1/2, 1: channel 0 (2, 1, -1), channel 1 (0, 0, 1); padded
    slots hold +-1e6, which would win any sort they took part in."""
    pool = FSPool(2, n_pieces=2).double()
    with torch.no_grad():
        pool.weight.copy_(torch.tensor([[2.0, 1.0, -1.0], [0.0, 0.0, 1.0]]))
    pad = 1e6
    rows = [
        [1.0, 3.0, pad, 2.0, -pad],  # n = 3, sorted 3, 2, 1 at t = 0, 1/2, 1
        [3.0, -1.0, 2.0, 0.0, pad],  # n = 4, sorted 3, 2, 0, -1 at t = 0, 1/3, 2/3, 1
        [pad, -2.0, -pad, pad, pad],  # n = 1: w(0)
        [0.5, pad, 4.0, -pad, -pad],  # n = 2, sorted 4, 0.5 at t = 0, 1
    ]
    x = torch.tensor(rows, dtype=torch.float64).unsqueeze(-1).expand(4, 5, 2)
    mask = x[..., 0].abs() < pad
    expected = [
        [3 * 2 + 2 * 1 + 1 * -1, 1 * 1],  # 7; the smallest, 1
        # w0(1/3) = 2 - 2/3 = 4/3, w0(2/3) = 1 - 2/3 = 1/3; w1(1/3) = 0, w1(2/3) = 1/3
        [3 * 2 + 2 * 4 / 3 + 0 * 1 / 3 + -1 * -1, 0 * 1 / 3 + -1 * 1],  # 29/3; -1
        [-2 * 2, 0.0],  # -4; 0
        [4 * 2 + 0.5 * -1, 0.5 * 1],  # 7.5; 0.5
    ]
    torch.testing.assert_close(pool(x, mask), torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_pieces", [1, 3, 20])
def test_matches_reference_values_and_gradients_in_float64(n_pieces):
    """tests/srn/reference.py's FSPool (exact knot positions j / (n - 1)), with sets of
    7, 5, 2, 1 and 0 real elements among junk: values and the gradients with respect to the
    set and the knots."""
    torch.manual_seed(2)
    pool = FSPool(3, n_pieces=n_pieces).double()
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [0, 1, 1, 0, 1, 1, 1], [1, 0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0], [0] * 7],
                        dtype=torch.bool)
    x[~mask] = 1e4
    x.requires_grad_(True)
    got, expected = pool(x, mask), reference.fspool(pool.weight, x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    weights = torch.randn(got.shape, dtype=torch.float64)
    grads = torch.autograd.grad((got * weights).sum(), [x, pool.weight])
    expected_grads = torch.autograd.grad((expected * weights).sum(), [x, pool.weight], allow_unused=True)
    for g, e, t in zip(grads, expected_grads, [x, pool.weight]):
        torch.testing.assert_close(g, torch.zeros_like(t) if e is None else e, rtol=1e-12, atol=1e-12)
