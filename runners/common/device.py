"""The one device rule of every runner: ``--device auto|cpu|cuda|cuda:N``."""
import platform
import sys
from pathlib import Path

import torch

from runners.common.errors import UsageError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(text: str, cuda_count: int | None = None) -> torch.device:
    """auto -> cuda when a GPU is visible, else cpu (and says which on stderr); cpu;
    cuda / cuda:N -> that GPU, UsageError when there is none. ``cuda_count``: visible GPUs
    (default: torch's count)."""
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text == "auto":
        device = torch.device("cuda" if cuda_count else "cpu")
        print(f"device auto -> {device.type} ({cuda_count} GPU(s) visible)", file=sys.stderr)
        return device
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device {text}: expected {CHOICES}") from None
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index is not None):
        raise UsageError(f"--device {text}: expected {CHOICES}")
    if device.type == "cuda":
        index = device.index or 0
        if index >= cuda_count:
            raise UsageError(f"--device {text}: {'no CUDA device is' if not cuda_count else f'only {cuda_count} CUDA device(s) are'} "
                             "available here; use --device cpu")
    return device


def device_here(device: torch.device) -> torch.device:
    """``device`` where this process can use it, else the CPU: a command that launched its
    runs as jobs on GPU nodes (from a login node without one) draws its figures here."""
    if device.type == "cuda" and (device.index or 0) >= (torch.cuda.device_count() if torch.cuda.is_available() else 0):
        return torch.device("cpu")
    return device


def device_name(device: torch.device) -> str:
    """The GPU's model name, or the CPU's (``cpu_name``)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """"CPU: <model> (<vector instructions>)", e.g. "CPU: AMD EPYC (AVX2)": the model as the
    system reports it, and the widest vector instructions torch's kernels use on it, which
    decide how its float reductions are split and so their last bits."""
    model = platform.processor() or "unknown model"
    if cpuinfo.exists():
        named = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = named[0] if named else model
    return f"CPU: {model} ({torch.backends.cpu.get_cpu_capability()})"


def use_device(device: torch.device) -> None:
    """Make ``device`` torch's current CUDA device, so that code which says only "cuda"
    (the upstreams' scripts) runs on it."""
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)
