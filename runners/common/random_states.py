"""Every random generator a run draws from, captured and restored as one value: python's
``random``, numpy's global generator, torch's CPU generator and, once CUDA is initialised,
every CUDA device's. Used to keep a side computation from moving a run's streams
(``kept``) and to carry a run's streams across a restart (``runners.common.checkpoints``)."""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch


def captured() -> dict:
    """The generators' states now: ``python``, ``numpy``, ``torch`` (uint8 tensor) and
    ``cuda`` (one uint8 tensor per device; empty while CUDA is not initialised)."""
    cuda = [torch.cuda.get_rng_state(device) for device in range(torch.cuda.device_count())] \
        if torch.cuda.is_initialized() else []
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}


def restore(states: dict) -> None:
    """Set every generator to ``states`` (from ``captured``)."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    for device, state in enumerate(states["cuda"]):
        torch.cuda.set_rng_state(state, device)


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Every generator is as it was before the block when the block ends."""
    states = captured()
    try:
        yield
    finally:
        restore(states)
