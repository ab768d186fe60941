"""Seeding for bit-identical reruns: same seed, same machine, same numbers."""
import os
import random

import numpy as np
import torch


def seed_everything(seed: int, threads: int | None = None) -> int:
    """Seed python, numpy and torch (CPU and CUDA), pin the intra-op thread count
    (``None`` = all cores) and ask torch for deterministic kernels. Returns the thread count."""
    threads = threads or os.cpu_count() or 1
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return threads
