import random

import numpy as np
import torch

from runners.common.seeding import seed_everything


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
