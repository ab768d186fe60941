"""Sort-of-CLEVR scenes from the upstream generator, and rendering with its conventions.

The upstream's ``build_dataset`` draws its six objects with ``cv2.rectangle`` and
``cv2.circle`` and returns only the image and the questions; ``RecordingCanvas`` stands
in for cv2 inside the generator, draws exactly what it is asked to and records the
objects it drew (so that robustness tests know where the shapes are), and can fill a new
image's background with random rectangles first (the cluttered variant, appendix D.4).
``render`` draws a scene with the generator's own constants and calls: a recorded scene
renders to the generator's image bit for bit.
"""
import contextlib
import random
import types
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from patches import relational_networks
from patches.vendor import Upstream
from runners.common import random_states

CLUTTER_RECTANGLES = 5
CLUTTER_SIDE = (5, 30)  # height and width of a background rectangle, inclusive, in pixels


class SceneObject(NamedTuple):
    """One of the generator's objects: colour index into its ``colors`` (r, g, b, o, k, y),
    centre (x, y) in pixels, shape 'r' (rectangle) or 'c' (circle)."""

    color_id: int
    x: int
    y: int
    shape: str


class Rectangle(NamedTuple):
    """A filled background rectangle from (x0, y0) to (x1, y1), colour (B, G, R)."""

    x0: int
    y0: int
    x1: int
    y1: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """What an image shows: objects in drawing order, drawn over the background rectangles."""

    objects: tuple[SceneObject, ...]
    background: tuple[Rectangle, ...] = ()

    def positions(self) -> np.ndarray:
        """[n_objects, 2] centres (x, y)."""
        return np.array([(o.x, o.y) for o in self.objects], dtype=float)

    def moved(self, positions: np.ndarray) -> "Scene":
        """The same scene with the objects' centres replaced by ``positions`` [n, 2] (integers)."""
        objects = tuple(o._replace(x=int(x), y=int(y)) for o, (x, y) in zip(self.objects, positions))
        return Scene(objects, self.background)


class RecordingCanvas(types.ModuleType):
    """Stands in for ``cv2`` inside the upstream generator (see the module docstring)."""

    def __init__(self):
        super().__init__("cv2")
        self.generator: types.ModuleType | None = None  # the generator drawing on it, for its constants
        self.clutter: np.random.Generator | None = None
        self._image = None
        self.objects: list[SceneObject] = []
        self.background: list[Rectangle] = []

    def scene(self) -> Scene:
        """The scene of the last image drawn."""
        return Scene(tuple(self.objects), tuple(self.background))

    def _start(self, img: np.ndarray) -> None:
        if img is self._image:
            return
        self._image, self.objects, self.background = img, [], []
        if self.clutter is not None:
            self.background = random_background(self.clutter, self.generator.img_size)
            draw_background(img, self.background)

    def rectangle(self, img, start, end, color, thickness):
        self._start(img)
        size = self.generator.size
        self.objects.append(SceneObject(self.generator.colors.index(color), int(start[0]) + size, int(start[1]) + size, "r"))
        return cv2.rectangle(img, start, end, color, thickness)

    def circle(self, img, center, radius, color, thickness):
        self._start(img)
        self.objects.append(SceneObject(self.generator.colors.index(color), int(center[0]), int(center[1]), "c"))
        return cv2.circle(img, center, radius, color, thickness)


def random_background(rng: np.random.Generator, img_size: int) -> list[Rectangle]:
    """Five rectangles of random colour, height and width at random places (appendix D.4)."""
    rectangles = []
    for _ in range(CLUTTER_RECTANGLES):
        width, height = (int(v) for v in rng.integers(CLUTTER_SIDE[0], CLUTTER_SIDE[1] + 1, 2))
        x0 = int(rng.integers(0, img_size - width + 1))
        y0 = int(rng.integers(0, img_size - height + 1))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        rectangles.append(Rectangle(x0, y0, x0 + width - 1, y0 + height - 1, color))
    return rectangles


def draw_background(img: np.ndarray, background) -> None:
    for r in background:
        cv2.rectangle(img, (r.x0, r.y0), (r.x1, r.y1), r.color, -1)


@contextlib.contextmanager
def seeded_streams(seed: int) -> Iterator[None]:
    """Seed python's and numpy's global generators (the upstream generator's randomness)
    with ``seed`` for the block, and give the caller's states back afterwards."""
    with random_states.kept():
        random.seed(seed)
        np.random.seed(seed)
        yield


class _RandomWithCentreRange:
    """numpy.random, but ``randint`` (called only by center_generate, as
    ``randint(size, img_size - size, 2)``) draws in [low, high) instead."""

    def __init__(self, expected: tuple[int, int], low: int, high: int):
        self.expected, self.low, self.high = expected, low, high

    def __getattr__(self, name):
        return getattr(np.random, name)

    def randint(self, low, high, size=None):
        if (low, high) != self.expected:
            raise RuntimeError(f"the upstream center_generate changed: randint({low}, {high}, ...)")
        return np.random.randint(self.low, self.high, size)


class _NumpyWithCentreRange(types.ModuleType):
    def __init__(self, random_: _RandomWithCentreRange):
        super().__init__("numpy")
        self.random = random_

    def __getattr__(self, name):
        return getattr(np, name)


class SortOfClevr:
    """The upstream generator (its own ``build_dataset``/``center_generate`` and constants),
    drawing on a RecordingCanvas."""

    def __init__(self, upstream: Upstream):
        self.canvas = RecordingCanvas()
        self.module = relational_networks.generator_module(upstream, shims={"cv2": self.canvas})
        self.canvas.generator = self.module
        self.colors, self.size, self.img_size = self.module.colors, self.module.size, self.module.img_size
        self.questions_per_image = self.module.nb_questions
        self.question_size = self.module.question_size

    def build(self, clutter: np.random.Generator | None = None):
        """One call of the upstream ``build_dataset`` (global python/numpy random state);
        returns its (img [75, 75, 3] float64 in [0, 1], relations, norelations) and the Scene."""
        self.canvas.clutter = clutter
        try:
            dataset = self.module.build_dataset()
        finally:
            self.canvas.clutter = None
        return dataset, self.canvas.scene()

    @contextlib.contextmanager
    def centres_from_border(self, margin: int) -> Iterator[None]:
        """Within the block, the generator places every centre at least ``margin`` pixels
        from the border (in [margin, img_size - margin)); everything else is upstream."""
        expected = (self.size, self.img_size - self.size)
        numpy = self.module.np
        self.module.np = _NumpyWithCentreRange(_RandomWithCentreRange(expected, margin, self.img_size - margin))
        try:
            yield
        finally:
            self.module.np = numpy

    def render(self, scene: Scene) -> np.ndarray:
        """The image of ``scene`` drawn as build_dataset draws, as uint8 [75, 75, 3] (BGR)
        (build_dataset's image times 255)."""
        img = np.ones((self.img_size, self.img_size, 3)) * 255
        draw_background(img, scene.background)
        for o in scene.objects:
            color = self.colors[o.color_id]
            if o.shape == "r":
                cv2.rectangle(img, (o.x - self.size, o.y - self.size), (o.x + self.size, o.y + self.size), color, -1)
            else:
                cv2.circle(img, (o.x, o.y), self.size, color, -1)
        return img.astype(np.uint8)

    def inside(self, positions: np.ndarray) -> bool:
        """Whether every centre in ``positions`` [..., 2] is where the generator may put one
        (so the whole shape is in the image)."""
        return bool(((positions >= self.size) & (positions < self.img_size - self.size)).all())
