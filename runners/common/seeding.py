"""Seeding for bit-identical reruns: same seed, same machine, same numbers; and the count
of the kernels that ran without a deterministic implementation."""
import contextlib
import os
import random
import warnings
from typing import Iterator

import numpy as np
import torch


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity mask (what SLURM's ``-c``, taskset
    or a container's cpuset allow), not the machine's count; os.cpu_count() where the
    platform has no affinity mask."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def seed_everything(seed: int, threads: int | None = None) -> int:
    """Seed python, numpy and torch (CPU and CUDA), pin the intra-op thread count
    (``None`` = every core of ``available_cores``) and ask torch for deterministic kernels.
    Returns the thread count."""
    threads = threads or available_cores()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return threads


NONDETERMINISTIC = "does not have a deterministic implementation"  # torch's warning under warn_only=True


@contextlib.contextmanager
def counting_nondeterminism() -> Iterator[list[str]]:
    """Within the block, each call of a kernel that has no deterministic implementation
    (torch runs it anyway under ``warn_only=True`` and warns) is counted: the yielded list
    gets the warning's text once per call. The first warning of each text is still shown
    where warnings go (a run's log); every other warning passes as before."""
    calls: list[str] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=f".*{NONDETERMINISTIC}")
        show = warnings.showwarning

        def count_then_show(message, category, filename, lineno, file=None, line=None):
            text = str(message)
            if NONDETERMINISTIC in text:
                calls.append(text)
                if calls.count(text) > 1:
                    return
            show(message, category, filename, lineno, file, line)

        warnings.showwarning = count_then_show
        yield calls
