"""Capture of the refiners' first-order loop (``srn.capture``), on the CPU with the
aot_eager backend: the eager numbers, bit for bit, across what changes shapes (another step
count, a smaller last batch, evaluation), one compile per shape, and an eager fallback for
a shape that cannot be compiled."""
import warnings

import pytest
import torch
from torch._dynamo.utils import counters

from srn import GraphEncoder, GraphRefiner, SetEncoder, SetRefiner, capture

B, N, D, E = 4, 5, 3, 4


def set_refiner():
    torch.manual_seed(0)
    return SetRefiner(SetEncoder(D, E, hidden=8, n_pieces=4), steps=2, inner_lr=0.1, momentum=0.5)


def graph_refiner():
    torch.manual_seed(0)
    return GraphRefiner(GraphEncoder(D, E, hidden=8, n_pieces=4), steps=2, inner_lr=0.1, momentum=0.5)


def call(refiner, batch: int, training: bool):
    """The outputs, inner losses and (training) the gradients to S0, z and the parameters."""
    generator = torch.Generator().manual_seed(batch)
    s0 = torch.randn(batch, N, D, generator=generator).requires_grad_(training)
    z = torch.randn(batch, E, generator=generator).requires_grad_(training)
    mask = torch.ones(batch, N, dtype=torch.bool)
    mask[0, 3:] = False
    with torch.set_grad_enabled(training):
        outputs = refiner(s0, z, mask=mask)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        results = [output.detach() for output in outputs] + [refiner.inner_losses]
        if training:
            results += torch.autograd.grad(sum((output ** 2).sum() for output in outputs),
                                           [s0, z, *refiner.parameters()])
    return results


# what changes the loop's shapes along a run: a schedule's step count, the last batch, evaluation
CALLS = [(2, B, True), (2, B - 1, True), (3, B, True), (2, B, False)]


@pytest.mark.slow
@pytest.mark.parametrize("make", [set_refiner, graph_refiner], ids=["set", "graph"])
def test_captured_loops_give_the_eager_numbers_compiling_each_shape_once(make):
    eager_refiner, captured_refiner = make(), make()
    counters.clear()
    with capture.capturing(torch.device("cpu")):
        for steps, batch, training in CALLS + CALLS:  # the second round reuses the compiled loops
            eager_refiner.steps = captured_refiner.steps = steps
            with capture.capturing(None):
                expected = call(eager_refiner, batch, training)
            got = call(captured_refiner, batch, training)
            for g, e in zip(got, expected, strict=True):
                assert torch.equal(g, e)
    assert counters["stats"]["unique_graphs"] == len(CALLS)
    assert not counters["graph_break"]


def test_a_shape_that_cannot_be_compiled_runs_eagerly_said_once():
    def refusing_batch_three(graph, example_inputs):
        if any(isinstance(x, torch.Tensor) and x.shape[:1] == (3,) for x in example_inputs):
            raise RuntimeError("cannot compile this batch")
        return graph.forward

    eager_refiner, captured_refiner = set_refiner(), set_refiner()
    with capture.capturing(torch.device("cpu")), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capture._backend = {"backend": refusing_batch_three}  # the block restores the backend it found
        for batch in (3, 3, B):
            got = call(captured_refiner, batch, True)
            for g, e in zip(got, call(eager_refiner, batch, True), strict=True):
                assert torch.equal(g, e)
    said = [str(warning.message) for warning in caught if "could not be captured" in str(warning.message)]
    assert len(said) == 1 and "[(3, 5, 3), (3, 4), (3, 5)]" in said[0] and "those run eagerly" in said[0]


def test_capture_is_off_outside_the_block_and_the_autograd_path_is_never_compiled():
    refiner = set_refiner()
    loop = refiner._first_order_loop
    assert capture.captured(refiner, loop) == loop
    with capture.capturing(torch.device("cpu")):
        assert capture.captured(refiner, loop) != loop
    assert capture.captured(refiner, loop) == loop
    torch.manual_seed(0)
    autograd = SetRefiner(SetEncoder(D, E, hidden=8, n_pieces=4), steps=2, inner_lr=0.1, gradient="autograd")
    counters.clear()
    with capture.capturing(torch.device("cpu")):
        call(autograd, B, True)
    assert not counters["stats"]["unique_graphs"]
