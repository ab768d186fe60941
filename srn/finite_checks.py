"""Whether the refiners' inputs, inner losses and refined sets are finite, checked without
a host synchronisation in the refiner call.

Each refiner call packs what it must check into one small tensor on its device (two flags
and the inner losses) and queues it here (``queue``). On the CPU the values are read at
once, without a dispatched op. On a GPU the tensor is copied to pinned host memory
asynchronously, behind a CUDA event; every later call reads the reports whose event has
completed (``event.query()``, which never waits), and ``raise_pending`` waits for all of
them: call it where a run may stall, at an epoch's end or before a result is kept. A
non-finite report raises ``InputNotFinite`` or ``InnerLossNotFinite`` naming the step, as
the refiner call that made it would have.
"""
import math
from collections import deque
from dataclasses import dataclass

import torch


class InnerLossNotFinite(FloatingPointError):
    """The inner loss, or the refined set after the last step, became NaN or infinite
    (usually: the inner learning rate is too high)."""


class InputNotFinite(FloatingPointError):
    """The refiner was handed a NaN or infinite initial set or embedding: what computed it
    (the model before the refiner) diverged; the inner loop is not the cause."""


@dataclass
class _Report:
    """One refiner call's check: values [2 + steps] on the host (inputs finite, refined
    finite, the inner losses), ready when ``event`` (None on the CPU) has completed."""

    values: torch.Tensor
    event: "torch.cuda.Event | None"
    inner_lr: float

    def ready(self) -> bool:
        return self.event is None or self.event.query()

    def raise_if_not_finite(self) -> None:
        inputs_finite, refined_finite, *losses = self.values.numpy().tolist()  # host memory: no dispatched op
        if not inputs_finite:
            raise InputNotFinite("the refiner's input (the initial set or the embedding z) is not finite: the model "
                                 "before the refiner diverged, not the inner loop (lower the learning rate?)")
        steps = len(losses)
        for step, loss in enumerate(losses, start=1):
            if not math.isfinite(loss):
                raise InnerLossNotFinite(f"inner loss is not finite at step {step} of {steps} ({loss}); lower the "
                                         f"inner learning rate (now {self.inner_lr})")
        if not refined_finite:
            raise InnerLossNotFinite(f"the refined set is not finite after the last inner step ({steps} of "
                                     f"{steps}); lower the inner learning rate (now {self.inner_lr})")


_PENDING: deque[_Report] = deque()


def queue(inputs: list[torch.Tensor], losses: torch.Tensor, refined: list[torch.Tensor], inner_lr: float) -> None:
    """Queue the check of one refiner call: ``inputs`` (the initial variables and the
    floating-point constants) and ``refined`` finite everywhere, ``losses`` [steps] finite;
    then raise for the first queued report known to be non-finite (this one's on the CPU)."""
    with torch.no_grad():
        flags = torch.stack([_all_finite(inputs), _all_finite(refined)]).to(losses.dtype)
        values = torch.cat([flags, losses])  # [2 + steps]
    if values.device.type == "cuda":
        host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
        host.copy_(values, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        _PENDING.append(_Report(host, event, inner_lr))
    else:
        _PENDING.append(_Report(values, None, inner_lr))
    _raise_ready()


def raise_pending() -> None:
    """Wait for every queued check and raise for the first non-finite one."""
    for report in _PENDING:
        if report.event is not None:
            report.event.synchronize()
    _raise_ready()


def _raise_ready() -> None:
    while _PENDING and _PENDING[0].ready():
        report = _PENDING.popleft()
        try:
            report.raise_if_not_finite()
        except FloatingPointError:
            _PENDING.clear()  # the run ends here: later calls' reports do not matter
            raise


def _all_finite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """[] bool: whether every tensor is finite everywhere."""
    return torch.stack([torch.isfinite(t).all() for t in tensors]).all()
