"""Runtime patches that run the pinned c-swm (tkipf/c-swm e944b24, written for Python 3.6,
gym 0.12 + atari-py, Pillow 5 and PyTorch 1.2) unmodified on Python 3.11, gymnasium 1.x +
ale-py 0.12, Pillow 10+, PyTorch 2.x and numpy 2.

``run_script(upstream, script, argv)`` runs ``train.py``, ``eval.py`` or
``data_gen/env.py`` with all of them installed; each is active only for the run:

* ``gym``: the modules of ``patches.gym_shim`` (gymnasium behind gym 0.12's names, gym
  0.12's Atari ``Deterministic-v4`` registrations, the old environment API).
* ``Image.ANTIALIAS``: removed in Pillow 10; ``data_gen/env.py`` resizes frames with it.
  It was always the Lanczos filter, which Pillow keeps as ``Image.LANCZOS``.
* ``loader.__iter__().next()``: train.py and eval.py take a first batch with Python 2's
  iterator method, which DataLoader iterators no longer have; ``next`` is given back.
* ``num_workers``: train.py and eval.py ask for 4 loader worker processes. On a machine
  without CUDA they are forced to 0: the batches, and so the results, are the same
  (the shuffle and the workers' base seed are drawn in the main process either way), and
  4 processes copying float64 frames only cost time on a laptop CPU. With CUDA the 4
  workers persist across epochs (train.py's 500 epochs would fork 2,000 of them) and
  pin their batches, with the same batches.
* The root logger: train.py calls ``logging.basicConfig`` (a no-op if the process has
  configured logging, and then its log.txt stays empty) and adds a FileHandler for its
  log.txt to the root logger every time it runs (a second run in the same process also
  writes into the first run's log). Each run starts with an unconfigured root logger, as
  a script does, and the previous handlers and level are restored after it
  (``patches.root_logger``).

* Frames as uint8 (``patches.cswm_frames``): data_gen/env.py writes uint8 frames and
  compacts its replay buffer as it goes; train.py and eval.py read them as the float32
  values they compute from float64 frames. ``uint8_frames=False`` keeps the upstream's
  float64 frames (to compare the two).

A replacement for the upstream's ``modules`` (the SRN adapter's) can be passed through
``modules``; ``output`` receives what the script prints or logs to the console. The
upstream files are never edited.
"""
import contextlib
import io
from types import ModuleType
from typing import Any, Iterator, Mapping, Sequence

import PIL.Image
import torch
import torch.utils.data

from patches import vendor
from patches.cswm_frames import uint8_utils
from patches.gym_shim import gym_modules
from patches.root_logger import fresh_root_logger

ORIGINAL_DATALOADER = torch.utils.data.DataLoader


class UpstreamDataLoader(ORIGINAL_DATALOADER):
    """torch's DataLoader as c-swm expects it: iterators with ``.next()``; no worker
    processes without CUDA; with CUDA, workers that persist across epochs (not 4 new
    processes per epoch) and batches in pinned memory. The batches are the upstream's
    either way: a persistent loader draws from torch's generator, each epoch, the worker
    base seed that a new iterator would draw, so the shuffles that follow are the same."""

    def __init__(self, dataset, *args, num_workers: int = 0, **kwargs):
        if not torch.cuda.is_available():
            num_workers = 0
        elif num_workers > 0:
            kwargs = {"pin_memory": True, "persistent_workers": True, **kwargs}
        super().__init__(dataset, *args, num_workers=num_workers, **kwargs)

    def __iter__(self):
        if self.persistent_workers and self._iterator is not None:
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # a new iterator's base seed
        iterator = super().__iter__()
        iterator.next = iterator.__next__
        return iterator


@contextlib.contextmanager
def pillow_antialias() -> Iterator[None]:
    """``PIL.Image.ANTIALIAS`` (Pillow < 10) = ``Image.LANCZOS`` within the block."""
    if hasattr(PIL.Image, "ANTIALIAS"):
        yield
        return
    PIL.Image.ANTIALIAS = PIL.Image.LANCZOS
    try:
        yield
    finally:
        del PIL.Image.ANTIALIAS


@contextlib.contextmanager
def upstream_dataloader() -> Iterator[None]:
    """``torch.utils.data.DataLoader`` is ``UpstreamDataLoader`` within the block."""
    torch.utils.data.DataLoader = UpstreamDataLoader
    try:
        yield
    finally:
        torch.utils.data.DataLoader = ORIGINAL_DATALOADER


def run_script(
    upstream: vendor.Upstream,
    script: str,
    argv: Sequence[str],
    modules: ModuleType | None = None,
    output: io.TextIOBase | None = None,
    uint8_frames: bool = True,
    script_globals: Mapping[str, Any] | None = None,
) -> dict:
    """Run the upstream ``script`` with ``argv`` under every patch, from the current
    directory; ``modules`` replaces the upstream's ``modules``; what it prints or logs to
    the console goes to ``output`` (default: stdout and stderr); ``script_globals``: names
    the script's globals start with (``vendor.run_script``). Returns the script's globals."""
    shims = gym_modules()
    if uint8_frames:
        shims["utils"] = uint8_utils(upstream)
    if modules is not None:
        shims["modules"] = modules
    with contextlib.ExitStack() as stack:
        if output is not None:
            stack.enter_context(contextlib.redirect_stdout(output))
            stack.enter_context(contextlib.redirect_stderr(output))
        stack.enter_context(pillow_antialias())
        stack.enter_context(upstream_dataloader())
        stack.enter_context(fresh_root_logger())
        return vendor.run_script(upstream, script, argv, shims, script_globals)
