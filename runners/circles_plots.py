"""The Circles figures as PNG: decomposition grids (paper Fig. 2, 7), a circle moving left to
right with each element's responsibility in colour (Fig. 5, appendix B.3) and 2-D t-SNE of
the element holding a single circle, coloured by x and by y (Fig. 3).

Every function takes ``models``: display label -> trained CircleAutoencoder (put in eval
mode; images go to its device).
"""
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from runners.circles_data import COLOURS, IMAGE_SIZE, Circles, render
from runners.circles_metric import NON_EMPTY_THRESHOLD, non_empty_elements
from ported.circles import CircleAutoencoder
from runners.circles_train import to_float
from runners.common.plots import save_figure

GAP = 2  # pixels between the tiles of a mosaic


@torch.no_grad()
def _decode(model: CircleAutoencoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """images uint8 [B, 3, 64, 64] -> (reconstructions [B, 3, 64, 64], parts
    [B, N, 3, 64, 64], set [B, N, D]) as numpy, the model in eval mode."""
    model.eval()
    reconstruction, parts, elements = model(to_float(torch.from_numpy(np.ascontiguousarray(images)), model.device))
    return reconstruction.cpu().numpy(), parts.cpu().numpy(), elements.cpu().numpy()


def _rgb(image: np.ndarray) -> np.ndarray:
    """[3, H, W] -> [H, W, 3] clipped to [0, 1]."""
    return np.clip(np.moveaxis(image, 0, -1), 0, 1)


def _mosaic(tiles: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of [H, W, 3] tiles -> one [rows*(H+GAP), cols*(W+GAP), 3] image on grey."""
    rows, cols = len(tiles), max(len(row) for row in tiles)
    canvas = np.full((rows * (IMAGE_SIZE + GAP) - GAP, cols * (IMAGE_SIZE + GAP) - GAP, 3), 0.5)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            top, left = r * (IMAGE_SIZE + GAP), c * (IMAGE_SIZE + GAP)
            canvas[top:top + IMAGE_SIZE, left:left + IMAGE_SIZE] = tile
    return canvas


def _framed(tile: np.ndarray) -> np.ndarray:
    """A copy of tile [H, W, 3] with a one-pixel yellow frame."""
    tile = tile.copy()
    tile[[0, -1], :] = (1, 1, 0)
    tile[:, [0, -1]] = (1, 1, 0)
    return tile


def decomposition_grid(model: CircleAutoencoder, data: Circles, indices: list[int], path: Path, title: str) -> None:
    """One row per test image: input, reconstruction, then every element's share of the
    reconstruction (softmax_i(I) * sigmoid(I_i)), largest first; non-empty elements (any
    value above 0.1, the metric's test) are framed in yellow."""
    reconstructions, parts, _ = _decode(model, data.images[indices])
    rows = []
    for image, reconstruction, image_parts in zip(data.images[indices], reconstructions, parts):
        non_empty = non_empty_elements(torch.from_numpy(image_parts[None]))[0].numpy()
        order = np.argsort(-image_parts.reshape(len(image_parts), -1).sum(axis=1), kind="stable")
        elements = [_framed(_rgb(image_parts[i])) if non_empty[i] else _rgb(image_parts[i]) for i in order]
        rows.append([_rgb(image.astype(float)), _rgb(reconstruction), *elements])
    counts = data.counts[indices]
    height = len(rows) * 0.75 + 0.6
    figure = Figure(figsize=(len(rows[0]) * 0.75, height))
    axis = figure.subplots()
    axis.imshow(_mosaic(rows), interpolation="nearest")
    axis.set_xticks([(IMAGE_SIZE + GAP) * c + IMAGE_SIZE / 2 for c in range(3)], ["input", "output", "elements →"],
                    fontsize=7)
    axis.set_yticks([(IMAGE_SIZE + GAP) * r + IMAGE_SIZE / 2 for r in range(len(rows))],
                    [f"{n} circle{'s' if n != 1 else ''}" for n in counts], fontsize=7)
    axis.tick_params(length=0)
    axis.set_title(f"{title}: elements by share, non-empty (> {NON_EMPTY_THRESHOLD}) framed", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)


def moving_circle(frames: int, radius: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A green circle moving left to right in ``frames`` steps at row 20, with a red circle
    standing still below it -> (images uint8 [frames, 3, 64, 64], x positions [frames])."""
    xs = np.linspace(radius, IMAGE_SIZE - 1 - radius, frames).round().astype(int)
    images = np.stack([render(np.array([[x, 20, radius, 1], [32, 46, radius, 0]])) for x in xs])
    return images, xs


def _palette(size: int) -> np.ndarray:
    """[size, 3] distinct colours, one per element."""
    return colormaps["tab20" if size <= 20 else "hsv"](np.arange(size) % 20 if size <= 20 else
                                                       np.linspace(0, 1, size, endpoint=False))[:, :3]


def responsibility(models: dict[str, CircleAutoencoder], path: Path, frames: int) -> None:
    """The moving circle: inputs, then per arm each frame coloured by which element draws
    each pixel (colour of element i times its share), and the share of the moving circle's
    pixels drawn by each element as the circle moves (a smooth hand-over between elements
    is the responsibility problem; a clean switch is what the SRN should do)."""
    images, xs = moving_circle(frames)
    moving = np.stack([render(np.array([[x, 20, 7, 1]]))[1].astype(bool) for x in xs])  # [T, 64, 64]
    figure = Figure(figsize=(frames * 0.8, 0.9 + 2.0 * len(models)))
    grid = figure.add_gridspec(1 + 2 * len(models), frames, height_ratios=[1] + [1, 1.4] * len(models))
    for t in range(frames):
        axis = figure.add_subplot(grid[0, t])
        axis.imshow(_rgb(images[t].astype(float)), interpolation="nearest")
        axis.set_axis_off()
    for a, (arm, model) in enumerate(models.items()):
        _, parts, _ = _decode(model, images)  # [T, N, 3, 64, 64]
        strength = parts.max(axis=2)  # [T, N, 64, 64]
        colours = _palette(parts.shape[1])
        maps = np.clip(np.einsum("tnhw,nc->thwc", strength, colours), 0, 1)
        for t in range(frames):
            axis = figure.add_subplot(grid[1 + 2 * a, t])
            axis.imshow(maps[t], interpolation="nearest")
            axis.set_axis_off()
            if t == 0:
                axis.set_title(arm, fontsize=8, loc="left")
        shares = (strength * moving[:, None]).sum(axis=(2, 3))
        shares = shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-12)  # [T, N]
        axis = figure.add_subplot(grid[2 + 2 * a, :])
        for i in np.flatnonzero(shares.max(axis=0) > 0.05):
            axis.plot(xs, shares[:, i], marker="o", markersize=3, color=colours[i], label=f"element {i}")
        axis.set_ylim(-0.05, 1.05)
        axis.set_xlabel("x of the moving circle", fontsize=7)
        axis.set_ylabel("share", fontsize=7)
        axis.tick_params(labelsize=6)
        axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)


def single_circles(radius: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """One red or green circle of ``radius`` on a grid of positions ``step`` pixels apart ->
    (images uint8 [M, 3, 64, 64], circles [M, 4] rows (x, y, radius, colour))."""
    positions = range(radius, IMAGE_SIZE - radius, step)
    circles = np.array([(x, y, radius, colour) for colour in range(len(COLOURS)) for y in positions for x in positions])
    return np.stack([render(circle[None]) for circle in circles]), circles


def holding_elements(model: CircleAutoencoder, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """images uint8 [M, 3, 64, 64] of one circle each -> [M, D]: per image the set element
    that draws the largest share of the reconstruction."""
    held = []
    for start in range(0, len(images), batch_size):
        _, parts, elements = _decode(model, images[start:start + batch_size])
        holder = parts.reshape(*parts.shape[:2], -1).sum(axis=2).argmax(axis=1)
        held.append(elements[np.arange(len(elements)), holder])
    return np.concatenate(held)


def tsne(models: dict[str, CircleAutoencoder], path: Path, radius: int, step: int) -> None:
    """2-D t-SNE (scikit-learn defaults, random_state 0) of the element holding the circle in
    single-circle images on a grid of positions; one row per arm, coloured by x and by y,
    red circles as dots and green ones as triangles."""
    from sklearn.manifold import TSNE  # here: scikit-learn takes 1.5 s to import, which every run's process would pay
    images, circles = single_circles(radius, step)
    figure = Figure(figsize=(7, 3.3 * len(models)))
    axes = figure.subplots(len(models), 2, squeeze=False)
    for row, (arm, model) in zip(axes, models.items()):
        embedded = TSNE(n_components=2, random_state=0).fit_transform(holding_elements(model, images))
        for axis, coordinate, name in zip(row, (0, 1), ("x", "y")):
            for colour, marker in zip(range(len(COLOURS)), ("o", "^")):
                chosen = circles[:, 3] == colour
                points = axis.scatter(embedded[chosen, 0], embedded[chosen, 1], c=circles[chosen, coordinate],
                                      cmap="viridis", vmin=0, vmax=IMAGE_SIZE - 1, s=8, marker=marker)
            axis.set_title(f"{arm}: coloured by {name} (dots red, triangles green)", fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
            figure.colorbar(points, ax=axis, fraction=0.046)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
