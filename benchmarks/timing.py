"""The timing rules every benchmark uses: alternating medians of single steps (CPU
benchmarks), and a block of training steps on a device with its peak GPU memory."""
import time
from typing import Callable

import torch


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``step``, after one warm-up call."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def alternating_medians(steps: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds per step over ``repeats`` rounds in which every step runs once
    in turn (after one warm-up call each), so that all see the same machine."""
    for step in steps.values():
        step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: sorted(values)[repeats // 2] for name, values in times.items()}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_cost(arm, steps: int, device: torch.device) -> dict:
    """Seconds per training step of ``arm`` (benchmarks.arm_steps.ArmSteps) over ``steps``
    steps after one warm-up (one synchronisation at the end, as training runs), and the
    peak GPU memory of those steps (GB; None on a CPU)."""
    arm.train_step()
    synchronise(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        arm.train_step()
    synchronise(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return {"seconds_per_step": seconds, "peak_memory_gb": peak}
