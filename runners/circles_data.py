"""The Circles dataset (paper section 2.2): 64x64 RGB images of 0 to 10 red or green discs.

Each image draws n ~ uniform{0..10} circles one after the other: radius uniform in 1..11,
colour red or green (one channel at 1), centre uniform among the integer points that keep
the whole disc inside the image. A circle that would overlap or touch a circle of the same
colour (its disc grown by one pixel shares a pixel with one already drawn) is rejected and
redrawn entirely; circles of different colours may overlap. Pixels are 0 or 1.

Image i of a split is drawn from its own random stream, seeded by (seed, split, i), so a
smaller dataset is a prefix of a bigger one with the same seed. Datasets are cached as
``<data dir>/circles/<split>-seed<seed>-<size>.npz`` with a SHA-256 of their content that is
checked before reuse.
"""
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation
from tqdm import tqdm

from runners.common.atomic import replaced_atomically

IMAGE_SIZE = 64
MAX_CIRCLES = 10
MAX_RADIUS = 11
COLOURS = ("red", "green")  # colour index = image channel
SPLITS = ("train", "test")
FORMAT_VERSION = 1
# x = column, y = row of every pixel, [64, 64] each
_ROWS, _COLUMNS = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
_NEIGHBOURS = np.ones((3, 3), dtype=bool)  # a pixel and its 8 neighbours


class DataError(Exception):
    """A dataset cache that cannot be used or written; the message is one line with the fix."""


@dataclass(frozen=True)
class Circles:
    """A set of images with their ground truth.

    images: uint8 [N, 3, 64, 64], 0 or 1 (channel 0 red, 1 green, 2 always 0).
    circles: int8 [N, 10, 4], one row (x, y, radius, colour) per circle in drawing order,
        x the column and y the row of the centre, colour 0 red or 1 green; rows past the
        image's count are -1.
    counts: int8 [N], the number of circles of each image.
    """

    images: np.ndarray
    circles: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)


def disc(x: int, y: int, radius: int) -> np.ndarray:
    """bool [64, 64]: the pixels within ``radius`` of the centre (column x, row y)."""
    return (_COLUMNS - x) ** 2 + (_ROWS - y) ** 2 <= radius**2


def render(circles: np.ndarray) -> np.ndarray:
    """circles int [n, 4] rows (x, y, radius, colour) -> uint8 image [3, 64, 64]."""
    image = np.zeros((3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for x, y, radius, colour in circles:
        image[colour] |= disc(x, y, radius)
    return image


def draw_scene(rng: np.random.Generator) -> np.ndarray:
    """The circles of one image, int [n, 4] rows (x, y, radius, colour), n ~ uniform{0..10}."""
    count = int(rng.integers(0, MAX_CIRCLES + 1))
    occupied = np.zeros((len(COLOURS), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    circles = []
    while len(circles) < count:
        radius = int(rng.integers(1, MAX_RADIUS + 1))
        x, y = (int(v) for v in rng.integers(radius, IMAGE_SIZE - radius, size=2))
        colour = int(rng.integers(0, len(COLOURS)))
        if (binary_dilation(disc(x, y, radius), structure=_NEIGHBOURS) & occupied[colour]).any():
            continue
        occupied[colour] |= disc(x, y, radius)
        circles.append((x, y, radius, colour))
    return np.array(circles, dtype=np.int64).reshape(-1, 4)


def generate(seed: int, split: str, size: int, progress: bool = False) -> Circles:
    """``size`` images of ``split``, image i drawn from the stream seeded by (seed, split, i)."""
    images = np.zeros((size, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    circles = np.full((size, MAX_CIRCLES, 4), -1, dtype=np.int8)
    counts = np.zeros(size, dtype=np.int8)
    for i in tqdm(range(size), desc=f"circles {split}", unit="image", disable=not progress):
        scene = draw_scene(np.random.default_rng([seed, SPLITS.index(split), i]))
        images[i] = render(scene)
        circles[i, : len(scene)] = scene
        counts[i] = len(scene)
    return Circles(images, circles, counts)


def cache_path(data_dir: Path, seed: int, split: str, size: int) -> Path:
    return Path(data_dir) / "circles" / f"{split}-seed{seed}-{size}.npz"


def _digest(images: np.ndarray, circles: np.ndarray, counts: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (images, circles, counts):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save(data: Circles, path: Path, seed: int, split: str) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old file or the new one)."""
    meta = {"format": FORMAT_VERSION, "seed": seed, "split": split, "size": len(data),
            "sha256": _digest(data.images, data.circles, data.counts)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, images=np.packbits(data.images, axis=None), circles=data.circles,
                     counts=data.counts, meta=np.array(json.dumps(meta)))
    except OSError as error:
        raise DataError(f"cannot write the dataset cache {path}: {error.strerror}; pass another --data-dir") from None


def load(path: Path, seed: int, split: str, size: int) -> Circles:
    """The cached dataset at ``path``, after checking that it is the one asked for and
    that its content is intact; DataError otherwise."""
    def corrupt(why: str) -> DataError:
        return DataError(f"the dataset cache {path} is corrupt ({why}): delete it to regenerate it")

    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            bits, circles, counts = stored["images"], stored["circles"], stored["counts"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise corrupt(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    expected = {"format": FORMAT_VERSION, "seed": seed, "split": split, "size": size}
    if not isinstance(meta, dict) or {key: meta.get(key) for key in expected} != expected:
        raise corrupt(f"it describes {meta}, expected {expected}")
    pixels = size * 3 * IMAGE_SIZE * IMAGE_SIZE
    if bits.shape != ((pixels + 7) // 8,) or circles.shape != (size, MAX_CIRCLES, 4) or counts.shape != (size,):
        raise corrupt("arrays of the wrong shape")
    images = np.unpackbits(bits, count=pixels).reshape(size, 3, IMAGE_SIZE, IMAGE_SIZE)
    if meta.get("sha256") != _digest(images, circles, counts):
        raise corrupt("checksum mismatch")
    return Circles(images, circles, counts)


def load_or_generate(data_dir: Path, seed: int, split: str, size: int) -> Circles:
    """The dataset (seed, split, size): from its cache when there is one, else generated
    and cached."""
    path = cache_path(data_dir, seed, split, size)
    if path.exists():
        return load(path, seed, split, size)
    data = generate(seed, split, size, progress=True)
    save(data, path, seed, split)
    return data
