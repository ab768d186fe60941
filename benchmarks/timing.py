"""The timing rule every benchmark uses."""
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
