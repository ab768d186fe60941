"""The timing rules of the CPU benchmarks: medians of single steps, alternating between the
steps compared (a block of training steps on a device with its peak GPU memory is
``runners.common.arm_steps.step_cost``)."""
import time
from typing import Callable



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
