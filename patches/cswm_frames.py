"""C-SWM frames stored as uint8: an eighth of the memory and disk, bit for bit the same training.

data_gen/env.py makes every frame as ``uint8 / 255`` in float64 and keeps the whole
replay buffer in memory until it saves it (2.4 GB per 1000 episodes); train.py's and
eval.py's datasets load the whole file into memory and cast each frame with
``utils.to_float`` (float32) when a batch needs it. Here:

* ``as_uint8`` turns such frames back into their integers k, refusing any value that is
  not exactly k / 255 (so ``as_uint8(x) / 255 == x`` bit for bit);
* ``to_float`` (the upstream's, for uint8 frames too) gives ``float32(float64(k) / 255)``,
  exactly what the upstream casts from its float64 frames, without a float64 copy of the
  dataset;
* ``CompactingOutput`` is data_gen/env.py's stdout: at each of its "iter N" lines (after
  every 10th episode) the frames of the finished episodes of its ``replay_buffer`` become
  uint8 arrays, so generation holds at most 10 episodes in float64;
* ``uint8_utils(upstream)`` is a fresh import of the upstream's ``utils`` with
  ``to_float`` replaced and ``save_list_dict_h5py`` writing frames as uint8.
"""
import io
import re
import sys
from types import ModuleType
from typing import Callable

import numpy as np

from patches import vendor

FRAME_KEYS = ("obs", "next_obs")
SCALE = 255


def as_uint8(frames) -> np.ndarray:
    """Frames of values k / 255 (a float array, or a list of them) -> uint8 k, same shape;
    ValueError if any value is not exactly some k / 255."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    integers = np.rint(frames * SCALE)
    if not (integers.min(initial=0) >= 0 and integers.max(initial=0) <= SCALE):
        raise ValueError("frame values outside [0, 1]")
    stored = integers.astype(np.uint8)
    if not np.array_equal(stored / SCALE, frames):
        raise ValueError("frame values that are not multiples of 1/255")
    return stored


def to_float(frames: np.ndarray) -> np.ndarray:
    """``utils.to_float``: float32 frames; uint8 frames k give float32(float64(k) / 255)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return (frames / SCALE).astype(np.float32)
    return np.array(frames, dtype=np.float32)


def as_stored(episodes: list[dict]) -> list[dict]:
    """The episodes with their frames as uint8 (other arrays as they are)."""
    return [{key: as_uint8(value) if key in FRAME_KEYS else value for key, value in episode.items()}
            for episode in episodes]


class CompactingOutput(io.TextIOBase):
    """data_gen/env.py's stdout (see the module docstring); ``on_episodes(n)`` is told the
    number of finished episodes at each "iter N" line."""

    def __init__(self, on_episodes: Callable[[int], None]):
        self.on_episodes = on_episodes

    def write(self, text: str) -> int:
        for number in re.findall(r"iter (\d+)", text):
            script = sys.modules["__main__"]  # runpy's module of the running script
            finished = int(number) + 1
            for episode in script.replay_buffer[:finished]:
                for key in FRAME_KEYS:
                    episode[key] = as_uint8(episode[key])
            self.on_episodes(finished)
        return len(text)


def uint8_utils(upstream: vendor.Upstream) -> ModuleType:
    """The upstream's ``utils``, freshly imported, storing and reading frames as uint8."""
    utils = vendor.import_modules(upstream, ["utils"]).utils
    save = utils.save_list_dict_h5py
    utils.save_list_dict_h5py = lambda episodes, fname: save(as_stored(episodes), fname)
    utils.to_float = to_float
    return utils
