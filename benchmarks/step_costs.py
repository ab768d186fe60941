"""What one training step costs besides its time: the floating-point operations it runs
(``step_flops``) and the memory it needs at its peak (``step_peak_memory``).

FLOPs are counted from the aten operations the step dispatches, with the formulas of
``torch.utils.flop_counter.flop_registry`` (matrix products and convolutions, forward and
backward; other operations count 0), in a ``TorchDispatchMode`` of its own:
``FlopCounterMode`` itself fails under the ``torch.autograd.grad`` of an inner loop. The
count is the floor of the time at identical maths: a refiner gets cheaper only by changing
what it computes.
"""
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

GB = 2 ** 30


class CountingFlops(TorchDispatchMode):
    """Within the mode, ``flops`` adds up the FLOPs of every dispatched aten operation that
    ``flop_registry`` has a formula for."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        return out


def step_flops(step: Callable[[], object]) -> int:
    """The FLOPs of one call of ``step``."""
    with CountingFlops() as counting:
        step()
    return counting.flops


def step_peak_memory(step: Callable[[], object], device: torch.device) -> float:
    """GB of memory one call of ``step`` allocates at its peak, beyond what was allocated
    before it: on a GPU, torch's allocated memory (``max_memory_allocated``); on the CPU,
    the running sum of the allocations and frees torch's profiler records during the step
    (its ``profile_memory``)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / GB
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiled:
        step()
    changes = sorted((event.start_ns(), event.nbytes()) for event in profiled.profiler.kineto_results.events()
                     if event.name() == "[memory]")
    allocated = peak = 0
    for _, nbytes in changes:
        allocated += nbytes
        peak = max(peak, allocated)
    return peak / GB
