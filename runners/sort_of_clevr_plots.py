"""The runner's pictures: validation accuracy per epoch, and what a robustness rotation looks like."""
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from runners.common.plots import save_figure
from runners.sort_of_clevr_robustness import RobustnessSet, rotated
from runners.sort_of_clevr_scenes import SortOfClevr


def plot_validation(runs: dict[str, list[dict]], path: Path) -> Path:
    """Validation accuracy (relational, non-relational) per epoch, mean over seeds, per arm
    (``runs``: display label -> metrics per seed, each with its per-epoch ``history``)."""
    figure = Figure(figsize=(9, 3.5), layout="tight")
    axes = figure.subplots(1, 2, sharey=True)
    for arm, arm_runs in runs.items():
        if not arm_runs:
            continue
        epochs = [entry["epoch"] for entry in arm_runs[0]["history"]]
        for ax, key in zip(axes, ("validation_rel", "validation_norel")):
            values = np.mean([[entry[key] for entry in run["history"]] for run in arm_runs], axis=0)
            ax.plot(epochs, values, marker="o", label=f"{arm} (n={len(arm_runs)})")
    for ax, title in zip(axes, ("relational", "non-relational")):
        ax.set(title=f"validation, {title}", xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%, upstream test_)")
    axes[0].legend()
    return save_figure(figure, path)


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
