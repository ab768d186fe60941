"""benchmarks/step_costs.py: FLOPs counted by hand for matrix products, through a double
backward pass; kernel ops and host synchronisations counted by hand; and the peak memory
of a step above what was in use before it."""
from collections import Counter

import pytest
import torch

from benchmarks.step_costs import CountingOps, step_flops, step_kernel_ops, step_peak_memory, synchronises


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


def test_kernel_ops_are_the_operations_counted_by_hand_without_views_and_a_read_is_one_sync():
    layer, x = torch.nn.Linear(16, 8), torch.randn(4, 16)

    def forward_backward_read() -> bool:
        layer.zero_grad()  # the gradients set to None: the backward pass writes them afresh, no add_
        loss = layer(x).view(-1).sum()
        loss.backward()
        return bool(loss > 0)

    # forward: t (a view) and addmm; view (a view); sum. Backward: ones_like (the loss's gradient); expand,
    # view and t (views); mm (the weight's gradient) and t (a view); sum.dim_IntList (the bias's); view,
    # detach, t and detach (views) as the gradients are stored. Then gt, and bool() reads the result:
    # _local_scalar_dense, a sync and no kernel op.
    by_hand = Counter({"aten.addmm": 1, "aten.sum": 2, "aten.ones_like": 1, "aten.mm": 1, "aten.gt": 1})
    with CountingOps() as counting:
        forward_backward_read()
    assert counting.kernels == by_hand
    assert step_kernel_ops(forward_backward_read) == (6, 1)


SYNCS = {  # a step on x [6] -> the host synchronisations it makes
    "item": (lambda x: x.sum().item(), 1),
    "if tensor": (lambda x: 1 if x.sum() > 0 else 0, 1),
    "nonzero": (lambda x: x.nonzero(), 1),
    "unique": (lambda x: x.unique(), 1),
    "boolean mask": (lambda x: x[x > 0], 1),
    "boolean mask written": (lambda x: x.clone().index_put_((x > 0,), torch.zeros(())), 1),
    "repeat_interleave": (lambda x: x.repeat_interleave(torch.ones(6, dtype=torch.long)), 1),
    "repeat_interleave of a known size": (
        lambda x: x.repeat_interleave(torch.ones(6, dtype=torch.long), output_size=6), 0),
    "integer index": (lambda x: x[torch.arange(3)], 0),
    "arithmetic": (lambda x: (x * 2).exp().sum(), 0),
}


@pytest.mark.parametrize("case", SYNCS)
def test_a_sync_is_an_operation_whose_value_or_shape_the_host_waits_for(case):
    step, syncs = SYNCS[case]
    x = torch.randn(6)
    assert step_kernel_ops(lambda: step(x)).syncs == syncs


def test_a_copy_to_the_cpu_from_another_device_is_a_sync():
    """A tensor on the meta device stands for one on a GPU."""
    aten, cpu, elsewhere = torch.ops.aten, torch.empty(2), torch.empty(2, device="meta")
    assert synchronises(aten._to_copy.default, (elsewhere,), {"device": torch.device("cpu")})
    assert synchronises(aten.copy_.default, (cpu, elsewhere), {})
    assert not synchronises(aten._to_copy.default, (cpu,), {"device": torch.device("meta")})
    assert not synchronises(aten.copy_.default, (elsewhere, cpu), {})
    # non-blocking into pageable memory still waits (only pinned memory, which needs a GPU build, does not)
    assert synchronises(aten.copy_.default, (cpu, elsewhere, True), {})


def test_an_optimisers_reads_of_its_step_counts_are_no_syncs_but_its_updates_are_kernel_ops():
    """Adam reads each parameter's step count with item() (a CPU tensor on a GPU as well)."""
    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.randn(3, 4)).sum().backward()
    optimizer.step()  # Adam makes its state at the first step
    counts = step_kernel_ops(optimizer.step)
    # per parameter: add_ (its step count); lerp_, mul_ and addcmul_ (the moments); sqrt, div, add_ and addcdiv_
    assert counts == (2 * 8, 0)


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
