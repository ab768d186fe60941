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


def resident_kb(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in kB (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def step_peak_memory(step: Callable[[], object], device: torch.device) -> float:
    """GB of memory one call of ``step`` needs at its peak above what was in use before it:
    on a GPU, torch's allocated memory (``max_memory_allocated``); on the CPU, the
    process's resident memory (Linux: its peak is reset through /proc/self/clear_refs)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / GB
    before = resident_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak resident memory starts again from the current one
    step()
    return max(0, resident_kb("VmHWM") - before) * 1024 / GB
