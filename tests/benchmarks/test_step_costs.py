"""benchmarks/step_costs.py: FLOPs counted by hand for matrix products, through a double
backward pass, and the peak memory of a step above what was in use before it."""
import pytest
import torch

from benchmarks.step_costs import step_flops, step_peak_memory


def test_a_linear_layer_counts_2_b_in_out_and_its_backward_twice_that():
    layer, x = torch.nn.Linear(16, 8), torch.randn(4, 16, requires_grad=True)
    assert step_flops(lambda: layer(x)) == 2 * 4 * 16 * 8

    def forward_backward():
        layer(x).sum().backward()

    assert step_flops(forward_backward) == 3 * 2 * 4 * 16 * 8  # forward, gradient to x, gradient to the weight


def test_flops_are_counted_through_a_double_backward_pass():
    """An inner loop takes torch.autograd.grad with create_graph, then the outer backward."""
    layer, x = torch.nn.Linear(16, 8, bias=False), torch.randn(4, 16, requires_grad=True)

    def inner_step():
        (gradient,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
        gradient.pow(2).sum().backward()

    one_matmul = 2 * 4 * 16 * 8
    assert step_flops(inner_step) > 3 * one_matmul


def test_the_peak_memory_is_what_the_step_held_at_most_above_before():
    floats = 64 * 2 ** 20  # 0.25 GB of float32

    def two_at_once():  # 0.5 GB at the peak, each freed before the step returns
        first = torch.ones(floats)
        second = first * 2
        del first
        return second.sum()

    kept = torch.ones(floats)  # allocated before the step: not counted
    assert step_peak_memory(lambda: torch.ones(floats).sum(), torch.device("cpu")) == pytest.approx(0.25, abs=1e-3)
    assert step_peak_memory(two_at_once, torch.device("cpu")) == pytest.approx(0.5, abs=1e-3)
    assert step_peak_memory(lambda: kept.add_(1), torch.device("cpu")) < 1e-3
