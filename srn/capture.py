"""Capture of the refiners' inner loop with ``torch.compile``, so that its few dozen kernels
per inner step stop costing a launch each.

On a GPU the loop is compiled by inductor in mode "reduce-overhead" (CUDA graphs: the
whole loop, forward and outer backward, replays as a few graph launches). On the CPU it is
traced with the "aot_eager" backend: one aten graph run by eager kernels, whose numbers are
the eager loop's (a CPU gains nothing from CUDA graphs, and inductor's CPU code would change
the last bits). Only the first-order loop can be captured: ``torch.compile`` does not
differentiate through ``torch.autograd.grad(create_graph=True)``.

Capture is process-wide and off by default; ``capturing(device)`` turns it on within a
block (a runner's ``--compile``). Every new shape (the upstream's smaller last batch, an
evaluation batch, another step count of a schedule or a step-count curve, training or
evaluation) is compiled once; a shape that cannot be compiled runs eagerly, said once.
"""
import contextlib
import sys
import warnings
import weakref
from typing import Any, Callable, Iterator

import torch

RECOMPILES = 64  # shapes per loop: batches x step counts x training / evaluation


class CaptureUnavailable(RuntimeError):
    """This torch cannot compile for the device."""


_backend: dict[str, Any] | None = None  # torch.compile's arguments while capturing, else None
_compiled: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()  # owner -> its loops
_eager: set[tuple] = set()  # (loop, shapes, grad mode) that could not be compiled: run eagerly, said once


def check_available(device: torch.device) -> None:
    """CaptureUnavailable (with the reason) unless this torch can capture on ``device``."""
    if not torch._dynamo.is_dynamo_supported():
        raise CaptureUnavailable(f"torch {torch.__version__} cannot compile on Python {sys.version.split()[0]}")
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise CaptureUnavailable(f"torch {torch.__version__} has no working triton, which inductor needs on a GPU")


def description(device: torch.device) -> str:
    """How the loop is captured on ``device``: what a run's environment records."""
    return ("torch.compile inductor reduce-overhead (CUDA graphs)" if device.type == "cuda"
            else "torch.compile aot_eager")


@contextlib.contextmanager
def capturing(device: torch.device | None) -> Iterator[None]:
    """Within the block, the refiners capture their first-order loops for ``device``
    (None: they do not)."""
    global _backend
    previous = _backend
    if device is None:
        _backend = None
    elif device.type == "cuda":
        _backend = {"backend": "inductor", "mode": "reduce-overhead"}
    else:
        _backend = {"backend": "aot_eager"}
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, RECOMPILES)
    try:
        yield
    finally:
        _backend = previous
        torch._dynamo.config.recompile_limit = limit


def captured(owner: torch.nn.Module, loop: Callable[..., Any]) -> Callable[..., Any]:
    """``loop`` (a method of ``owner``, a function of tensors returning a tuple of
    tensors), compiled whole while capturing (each owner compiles its own, once); itself
    otherwise. Under CUDA graphs the outputs are copied, since the next replay overwrites
    the graph's own (C-SWM calls its refiner twice before using either result)."""
    if _backend is None:
        return loop
    key = (loop.__name__, str(sorted(_backend.items())))
    loops = _compiled.setdefault(owner, {})
    if key not in loops:
        loops[key] = torch.compile(loop, fullgraph=True, dynamic=False, **_backend)

    def run(*args: Any) -> Any:
        shape = (type(owner).__name__, loop.__name__, torch.is_grad_enabled(),
                 *((tuple(arg.shape), arg.dtype) if isinstance(arg, torch.Tensor) else arg for arg in args))
        if shape in _eager:
            return loop(*args)
        try:
            outputs = loops[key](*args)
            # CUDA graphs replay into the same memory: copies outlive the next replay
            return tuple(output.clone() for output in outputs) if _backend.get("mode") == "reduce-overhead" else outputs
        except (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError) as error:
            _eager.add(shape)
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(f"{type(owner).__name__} could not be captured for the shapes "
                          f"{[tuple(arg.shape) for arg in args if isinstance(arg, torch.Tensor)]} "
                          f"({type(error).__name__}: {message}); those run eagerly", stacklevel=2)
            return loop(*args)

    return run
