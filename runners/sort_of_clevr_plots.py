"""The runner's pictures besides its learning curves (``CURVE_METRICS``, drawn by
runners.common.curves): what a robustness rotation looks like."""
from pathlib import Path

from matplotlib.figure import Figure

from runners.common.plots import save_figure
from runners.common.stats import Metric
from runners.sort_of_clevr_robustness import RobustnessSet, rotated
from runners.sort_of_clevr_scenes import SortOfClevr

CURVE_METRICS = [Metric(f"{split}_{kind}", f"{split}, {name} (%, upstream {what})")
                 for split, what in (("train", "train_"), ("validation", "test_"))
                 for kind, name in (("rel", "relational"), ("norel", "non-relational"))]


def plot_robustness_examples(generator: SortOfClevr, sets: list[RobustnessSet], n_rotations: int, path: Path) -> Path:
    """For the first scene of each robustness set: as generated, and rotated by a quarter turn
    (or the nearest evaluated rotation), as the model sees them (the generator's BGR shown as RGB)."""
    figure = Figure(figsize=(5, 2.6 * len(sets)), layout="tight")
    axes = figure.subplots(len(sets), 2, squeeze=False)
    k = n_rotations // 4
    for row, robustness in zip(axes, sets):
        scene, centre = robustness.scenes[0], robustness.centres[0]
        turned = scene.moved(rotated(scene.positions(), centre, n_rotations)[k])
        for ax, shown, title in zip(row, (scene, turned), ("as generated", f"rotated {360 * k / n_rotations:g}°")):
            ax.imshow(generator.render(shown)[:, :, ::-1])
            ax.set_title(f"{robustness.name}: {title}", fontsize=9)
            ax.axis("off")
    return save_figure(figure, path)
