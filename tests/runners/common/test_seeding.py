import os
import random

import numpy as np
import torch

from runners.common.seeding import available_cores, seed_everything


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_same_seed_same_draws_and_pinned_threads():
    assert seed_everything(3, threads=1) == 1
    first = draws()
    assert torch.get_num_threads() == 1
    seed_everything(3, threads=1)
    assert draws() == first
    seed_everything(4, threads=1)
    assert draws() != first


def test_all_cores_means_those_of_the_affinity_mask(monkeypatch):
    """Under ``srun -c 3`` (or taskset, or a container's cpuset) on a 128-core node, a run
    takes the 3 cores it may use, not 128."""
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6})
    assert available_cores() == 3
    assert seed_everything(0) == 3 and torch.get_num_threads() == 3


def test_seeding_asks_for_deterministic_kernels():
    """Reruns are bit-identical only with torch's deterministic algorithms (warn_only: a
    kernel without one still runs and is counted), cuDNN's autotuner off and cuBLAS's
    fixed workspace."""
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    seed_everything(0, threads=1)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
