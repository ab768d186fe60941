"""The refiners' finiteness checks read nothing on the host during a refiner call, and a
check whose values are not ready yet (a GPU still computing them) raises later: at a later
call once they are, or when the pending checks are waited for."""
import pytest
import torch

from benchmarks.step_costs import step_kernel_ops
from srn import GraphEncoder, GraphRefiner, InnerLossNotFinite, SetEncoder, SetRefiner, finite_checks


@pytest.mark.parametrize("make", [
    lambda: SetRefiner(SetEncoder(4, 6, hidden=8), steps=3, inner_lr=0.1),
    lambda: GraphRefiner(GraphEncoder(4, 6, hidden=8), steps=3, inner_lr=0.1),
], ids=["set", "graph"])
def test_a_refiner_call_and_its_outer_backward_read_nothing_on_the_host(make):
    refiner = make()
    s0, z = torch.randn(2, 5, 4, requires_grad=True), torch.randn(2, 6)
    def step():
        outputs = refiner(s0, z)
        sum(output.sum() for output in (outputs if isinstance(outputs, tuple) else (outputs,))).backward()

    assert step_kernel_ops(step).syncs == 0


class EventNotDone:
    """A CUDA event's ``query`` and ``synchronize`` for a check whose device values are not
    ready until the host waits for them."""

    def __init__(self):
        self.done = False

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        self.done = True


def test_a_check_not_ready_raises_once_waited_for_not_before():
    not_finite = torch.tensor([1.0, 1.0, 2.0, float("inf")])  # inputs finite, refined finite, losses [2.0, inf]
    finite_checks._PENDING.append(finite_checks._Report(not_finite, EventNotDone(), inner_lr=0.5))
    try:
        refiner = SetRefiner(SetEncoder(4, 6, hidden=8), steps=2, inner_lr=0.1)
        refiner(torch.randn(2, 5, 4), torch.randn(2, 6))  # a later call: the earlier check is still pending
        assert len(finite_checks._PENDING) == 2
        with pytest.raises(InnerLossNotFinite, match=r"^inner loss is not finite at step 2 of 2 \(inf\); lower the "
                                                     r"inner learning rate \(now 0.5\)$"):
            finite_checks.raise_pending()
        assert not finite_checks._PENDING
    finally:
        finite_checks._PENDING.clear()


def test_a_later_call_raises_for_an_earlier_check_that_became_ready():
    event = EventNotDone()
    finite_checks._PENDING.append(finite_checks._Report(torch.tensor([0.0, 1.0, 1.0]), event, inner_lr=0.5))
    refiner = SetRefiner(SetEncoder(4, 6, hidden=8), steps=2, inner_lr=0.1)
    try:
        refiner(torch.randn(2, 5, 4), torch.randn(2, 6))
        event.done = True
        with pytest.raises(FloatingPointError, match="the model before the refiner diverged"):
            refiner(torch.randn(2, 5, 4), torch.randn(2, 6))
    finally:
        finite_checks._PENDING.clear()
