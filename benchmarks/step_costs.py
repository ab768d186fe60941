"""What one training step costs besides its time: the floating-point operations it runs
(``step_flops``), the kernels it launches and the times it makes the host wait for the
device (``step_kernel_ops``), and the memory it needs at its peak (``step_peak_memory``).

FLOPs are counted from the aten operations the step dispatches, with the formulas of
``torch.utils.flop_counter.flop_registry`` (matrix products and convolutions, forward and
backward; other operations count 0), in a ``TorchDispatchMode`` of its own:
``FlopCounterMode`` itself fails under the ``torch.autograd.grad`` of an inner loop. The
count is the floor of the time at identical maths: a refiner gets cheaper only by changing
what it computes.

Kernel ops and host synchronisations are counted in the same mode, from the operations the
step dispatches after autograd (forward, backward and optimiser alike; what an operation
runs inside itself is not seen). They are the CPU-measurable proxy for what a step costs a
GPU besides its FLOPs: every kernel launch costs the host microseconds whatever its size,
and every synchronisation stalls the host until the device has caught up.

A kernel op is any dispatched operation but those that launch no kernel: views
(``func.is_view``: view, t, expand, detach, alias, lift_fresh...), in-place views
(``torch.Tag.inplace_view``: unsqueeze_, detach_, resize_, set_...), ``NO_KERNEL``
(aten._unsafe_view, a view torch does not track as one, and the allocations without a
fill, aten.empty and its kin), aten._local_scalar_dense (the copy of one value to the host,
counted as a synchronisation) and the profiler's record_function markers.

A host synchronisation is an operation whose result the host waits for (``synchronises``):
reading a value (aten._local_scalar_dense: ``item()``, ``bool()``, ``int()``, ``float()``
of a tensor, ``if tensor:``; aten.equal), an output whose shape depends on the values
(``VALUE_SHAPED``: nonzero, masked_select, the unique ops; repeat_interleave without
``output_size``; indexing and index_put with a boolean mask) and a copy to the CPU from
another device (seen only where the step runs on a GPU: on the CPU ``.cpu()``, ``.numpy()``
and ``.tolist()`` dispatch nothing), unless it is a non-blocking copy into pinned memory
(how ``srn.finite_checks`` reads its flags). Reads inside a torch optimiser's step are not
counted: its per-parameter step counts stay on the CPU on a GPU too, so reading them waits
for nothing. Other reads of tensors that stay on the CPU on a GPU are counted, as the CPU
cannot tell them apart (nn.LSTM reads a PackedSequence's batch_sizes twice per call).

Where the CPU's paths differ from a GPU's, so do the counts: on the CPU torch's optimisers
take their per-parameter path (Adam: eight kernel ops per parameter) where a GPU's foreach
path launches a few kernels per group of tensors, and nn.LSTM runs a PackedSequence cell by
cell (about 33 kernel ops per time step and direction, forward and backward) where cuDNN
runs the whole sequence as one op.
"""
from collections import Counter
from typing import Callable, NamedTuple

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

GB = 2 ** 30
aten = torch.ops.aten
NO_KERNEL = {aten._unsafe_view, aten.empty, aten.empty_like, aten.empty_strided, aten.empty_permuted,
             aten.new_empty, aten.new_empty_strided, aten._local_scalar_dense}
VALUE_SHAPED = {aten.nonzero, aten.masked_select, aten.unique_dim, aten.unique_consecutive,
                aten.unique_dim_consecutive, aten._unique, aten._unique2}
MASK_INDEXED = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}  # (self, indices, ...)


class KernelOps(NamedTuple):
    """What one call of a step launches: ``ops`` kernel ops and ``syncs`` host
    synchronisations (the module's docstring has the rules)."""

    ops: int
    syncs: int


def launches_kernel(func: torch._ops.OpOverload) -> bool:
    """Whether the dispatched operation ``func`` counts as a kernel op."""
    return not (func.is_view or torch.Tag.inplace_view in func.tags or func._overloadpacket in NO_KERNEL
                or func.namespace == "profiler")


def synchronises(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> bool:
    """Whether the host waits for the result of ``func(*args, **kwargs)``."""
    packet = func._overloadpacket
    if packet in (aten._local_scalar_dense, aten.equal) or packet in VALUE_SHAPED:
        return True
    if packet is aten.repeat_interleave:
        return kwargs.get("output_size") is None
    if packet in MASK_INDEXED:
        return any(index is not None and index.dtype in (torch.bool, torch.uint8) for index in args[1])
    if packet is aten._to_copy:
        return kwargs.get("device") == torch.device("cpu") and args[0].device.type != "cpu"
    if packet is aten.copy_:  # a non-blocking copy into pinned memory waits for nothing
        non_blocking = args[2] if len(args) > 2 else kwargs.get("non_blocking", False)
        return (args[0].device.type == "cpu" and args[1].device.type != "cpu"
                and not (non_blocking and args[0].is_pinned()))
    return False


class CountingOps(TorchDispatchMode):
    """Within the mode, ``flops`` adds up the FLOPs of every dispatched aten operation that
    ``flop_registry`` has a formula for, ``kernels`` counts the kernel ops by operation
    ("aten.mm") and ``syncs`` the host synchronisations outside torch optimisers' steps."""

    def __init__(self):
        super().__init__()
        self.flops, self.kernels, self.syncs = 0, Counter(), 0
        self.optimising = False  # within a torch optimiser's step
        self._hooks = []

    def __enter__(self):
        self._hooks = [register_optimizer_step_pre_hook(lambda *_: self._optimising(True)),
                       register_optimizer_step_post_hook(lambda *_: self._optimising(False))]
        return super().__enter__()

    def __exit__(self, *exception):
        for hook in self._hooks:
            hook.remove()
        return super().__exit__(*exception)

    def _optimising(self, now: bool) -> None:
        self.optimising = now

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        if launches_kernel(func):
            self.kernels[str(func._overloadpacket)] += 1
        if not self.optimising and synchronises(func, args, kwargs):
            self.syncs += 1
        return out


def step_flops(step: Callable[[], object]) -> int:
    """The FLOPs of one call of ``step``."""
    with CountingOps() as counting:
        step()
    return counting.flops


def step_kernel_ops(step: Callable[[], object]) -> KernelOps:
    """The kernel ops and host synchronisations of one call of ``step``."""
    with CountingOps() as counting:
        step()
    return KernelOps(sum(counting.kernels.values()), counting.syncs)


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
