"""Robustness (Synthetic) and Robustness (Dataset): section 3.1 and appendix D.2.

Both ask the upstream's Furthest question about the red shape (question vector
[1,0,0,0,0,0,0,1,0,1,0]: "what is the shape of the object furthest from red?"; the
paper's appendix says "colour", the upstream asks for the shape). An image is robust when
the model answers correctly under every one of ``n_rotations`` evenly spaced rotations of
the shape coordinates; each rotation is re-rendered with axis-aligned shapes (pixels are
never rotated), coordinates rounded to whole pixels, identical renderings evaluated once.

* Synthetic: one easy configuration (red with four shapes 10 px away and yellow 24 px
  away, so yellow is furthest at every rotation; yellow's shape random per image, so its
  answer cannot be read off the other shapes) translated to distinct positions of the
  red shape at which every rotation about the red shape keeps every shape inside.
* Dataset: images from the upstream generator with every centre at least 15 px from the
  border, kept if "easy" (the shape furthest from red at least twice as far as the second
  furthest). They are rotated about the image centre: with centres in [15, 59] every
  rotation keeps every centre in [6, 68], inside the generator's [5, 69], which rotation
  about the red shape would not. Any rigid rotation keeps the answer.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from runners.common.errors import UsageError
from runners.sort_of_clevr_data import cached
from runners.sort_of_clevr_evaluation import predict
from runners.sort_of_clevr_scenes import Rectangle, Scene, SceneObject, SortOfClevr, random_background, seeded_streams

RED = 0
FURTHEST_FROM_RED = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0], dtype=np.float32)
SHAPE_ANSWER = {"r": 2, "c": 3}  # the generator's answers: rectangle, circle
PAPER_ROTATIONS = 720
BORDER_MARGIN = 15
EASY_RATIO = 2.0
SYNTHETIC_SEED = 5
DATASET_SEED = 4
# The synthetic configuration: (colour id, offset from red (dx, dy), shape); yellow's shape is drawn per image.
SYNTHETIC_LAYOUT = ((0, (0, 0), "c"), (1, (10, 0), "r"), (2, (0, 10), "c"), (3, (-10, 0), "r"), (4, (0, -10), "c"),
                    (5, (17, 17), None))


def furthest_answer(positions: np.ndarray, shapes: list[str]) -> int:
    """The generator's Furthest rule for the red shape: the shape of the object with the
    largest squared distance from red (the first one on a tie); positions [n, 2]."""
    squared = ((positions - positions[RED]) ** 2).sum(axis=1)
    return SHAPE_ANSWER[shapes[int(np.argmax(squared))]]


def is_easy(positions: np.ndarray) -> bool:
    """Whether the shape furthest from red is at least twice as far as the second furthest."""
    distances = np.sort(np.sqrt(((positions - positions[RED]) ** 2).sum(axis=1)))
    return bool(distances[-1] >= EASY_RATIO * distances[-2])


def rotated(positions: np.ndarray, centre: np.ndarray, n_rotations: int) -> np.ndarray:
    """positions [n, 2] rotated about ``centre`` [2] by 2*pi*k/n_rotations, k = 0..n-1,
    rounded to whole pixels -> [n_rotations, n, 2] int (k = 0 is ``positions``)."""
    angles = 2 * np.pi * np.arange(n_rotations) / n_rotations
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    dx, dy = (positions - centre).T
    x = centre[0] + cos * dx - sin * dy
    y = centre[1] + sin * dx + cos * dy
    return np.rint(np.stack([x, y], axis=-1)).astype(np.int64)


@dataclass(frozen=True)
class RobustnessSet:
    """Scenes and the point each one is rotated about ([n_scenes, 2])."""

    name: str
    scenes: list[Scene]
    centres: np.ndarray


def synthetic_set(generator: SortOfClevr, n_positions: int, clutter: bool = False) -> RobustnessSet:
    """The synthetic configuration at ``n_positions`` distinct positions of the red shape,
    drawn (fixed seed) from all positions where each of the paper's 720 rotations about
    red keeps every shape inside."""
    offsets = np.array([offset for _, offset, _ in SYNTHETIC_LAYOUT], dtype=float)
    turns = rotated(offsets, np.zeros(2), PAPER_ROTATIONS)  # [720, 6, 2] offsets
    low, high = generator.size - turns.min(axis=(0, 1)), generator.img_size - generator.size - 1 - turns.max(axis=(0, 1))
    grid = np.array([(x, y) for x in range(low[0], high[0] + 1) for y in range(low[1], high[1] + 1)])
    if n_positions > len(grid):
        raise UsageError(f"the synthetic robustness configuration fits at {len(grid)} positions, not {n_positions}")
    rng = np.random.default_rng(SYNTHETIC_SEED)
    positions = grid[rng.permutation(len(grid))[:n_positions]]
    scenes = []
    for red in positions:
        yellow_shape = str(rng.choice(["r", "c"]))
        objects = tuple(SceneObject(color, int(red[0] + dx), int(red[1] + dy), shape or yellow_shape)
                        for color, (dx, dy), shape in SYNTHETIC_LAYOUT)
        background = tuple(random_background(rng, generator.img_size)) if clutter else ()
        scenes.append(Scene(objects, background))
    return RobustnessSet("synthetic", scenes, positions.astype(float))


def dataset_set(generator: SortOfClevr, n_images: int, cache_dir: Path, clutter: bool = False) -> tuple[RobustnessSet, int]:
    """``n_images`` easy images from the upstream generator with centres at least 15 px
    from the border (cached); returns the set and how many images were generated to find them."""
    path = cache_dir / f"robustness-{n_images}-seed{DATASET_SEED}{'-clutter' if clutter else ''}.npz"
    arrays = cached(path, lambda: _easy_scene_arrays(generator, n_images, clutter))
    scenes = _scenes_from_arrays(arrays["objects"], arrays["background"])
    if len(scenes) != n_images:
        raise UsageError(f"the cached data {path} does not hold {n_images} scenes; delete it")
    centre = np.full(2, (generator.img_size - 1) / 2)
    return RobustnessSet("dataset", scenes, np.tile(centre, (n_images, 1))), int(arrays["generated"])


def _easy_scene_arrays(generator: SortOfClevr, n_images: int, clutter: bool) -> dict[str, np.ndarray]:
    clutter_rng = np.random.default_rng(DATASET_SEED) if clutter else None
    scenes, generated = [], 0
    with seeded_streams(DATASET_SEED), generator.centres_from_border(BORDER_MARGIN), \
            tqdm(total=n_images, desc="easy images for robustness", unit="image", leave=False) as progress:
        while len(scenes) < n_images:
            _, scene = generator.build(clutter_rng)
            generated += 1
            if is_easy(scene.positions()):
                scenes.append(scene)
                progress.update()
    objects = np.array([[(o.color_id, o.x, o.y, o.shape == "r") for o in s.objects] for s in scenes], dtype=np.int64)
    background = np.array([[(r.x0, r.y0, r.x1, r.y1, *r.color) for r in s.background] for s in scenes], dtype=np.int64)
    return {"objects": objects, "background": background.reshape(n_images, -1, 7), "generated": np.array(generated)}


def _scenes_from_arrays(objects: np.ndarray, background: np.ndarray) -> list[Scene]:
    return [Scene(tuple(SceneObject(int(c), int(x), int(y), "r" if r else "c") for c, x, y, r in scene_objects),
                  tuple(Rectangle(int(x0), int(y0), int(x1), int(y1), (int(b), int(g), int(r)))
                        for x0, y0, x1, y1, b, g, r in scene_background))
            for scene_objects, scene_background in zip(objects, background)]


def rotation_renders(generator: SortOfClevr, scene: Scene, centre: np.ndarray, n_rotations: int):
    """The distinct renderings of ``scene`` under the rotations, unrotated first:
    images uint8 [U, 75, 75, 3] and their Furthest answers [U]."""
    turns = rotated(scene.positions(), centre, n_rotations)
    _, first = np.unique(turns.reshape(n_rotations, -1), axis=0, return_index=True)
    shapes = [o.shape for o in scene.objects]
    distinct = turns[np.sort(first)]
    images = np.stack([generator.render(scene.moved(p)) for p in distinct])
    return images, np.array([furthest_answer(p, shapes) for p in distinct])


def evaluate(model: nn.Module, generator: SortOfClevr, robustness: RobustnessSet, n_rotations: int,
             batch_size: int, device: torch.device, chunk: int = 16) -> dict[str, float]:
    """robust: fraction of scenes answered correctly under every rotation;
    unrotated_accuracy: fraction answered correctly as generated; renders: distinct
    renderings evaluated. The caller decides on dropout (see output_dropout_off)."""
    robust, unrotated, renders = [], [], 0
    scenes = robustness.scenes
    for start in tqdm(range(0, len(scenes), chunk), desc=f"robustness ({robustness.name})", unit="chunk", leave=False):
        parts = [rotation_renders(generator, scene, centre, n_rotations)
                 for scene, centre in zip(scenes[start:start + chunk], robustness.centres[start:start + chunk])]
        images = np.concatenate([images for images, _ in parts])
        answers = np.concatenate([answers for _, answers in parts])
        questions = np.tile(FURTHEST_FROM_RED, (len(images), 1))
        correct = predict(model, images, np.arange(len(images)), questions, batch_size, device) == answers
        offset = 0
        for images_of_scene, _ in parts:
            robust.append(bool(correct[offset:offset + len(images_of_scene)].all()))
            unrotated.append(bool(correct[offset]))
            offset += len(images_of_scene)
        renders += len(images)
    return {"robust": float(np.mean(robust)), "unrotated_accuracy": float(np.mean(unrotated)), "renders": renders}


def timed_evaluation(model, generator, sets: list[RobustnessSet], n_rotations, batch_size, device) -> dict[str, float]:
    """``evaluate`` on every set; metrics ``robust_<name>``, ``<name>_unrotated_accuracy``,
    ``<name>_renders`` and ``robustness_seconds`` (wall time for all sets)."""
    start, metrics = time.perf_counter(), {}
    for robustness in sets:
        result = evaluate(model, generator, robustness, n_rotations, batch_size, device)
        metrics[f"robust_{robustness.name}"] = result["robust"]
        metrics[f"{robustness.name}_unrotated_accuracy"] = result["unrotated_accuracy"]
        metrics[f"{robustness.name}_renders"] = result["renders"]
    metrics["robustness_seconds"] = time.perf_counter() - start
    return metrics
