"""The runner's pictures: validation accuracy per epoch, and what a robustness rotation looks like."""
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from runners.sortofclevr.robustness import RobustnessSet, rotated  # noqa: E402
from runners.sortofclevr.scenes import SortOfClevr  # noqa: E402


def plot_validation(runs: dict[str, list[dict]], path: Path) -> None:
    """Validation accuracy (relational, non-relational) per epoch, mean over seeds, per arm."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for arm, arm_runs in runs.items():
        if not arm_runs:
            continue
        epochs = [entry["epoch"] for entry in arm_runs[0]["history"]]
        for ax, key in zip(axes, ("validation_rel", "validation_norel")):
            values = np.mean([[entry[key] for entry in run["history"]] for run in arm_runs], axis=0)
            ax.plot(epochs, values, marker="o", label=f"{arm} (n={len(arm_runs)})")
    for ax, title in zip(axes, ("relational", "non-relational")):
        ax.set(title=f"validation, {title}", xlabel="epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%, upstream test_)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_robustness_examples(generator: SortOfClevr, sets: list[RobustnessSet], n_rotations: int, path: Path) -> None:
    """For the first scene of each robustness set: as generated, and rotated by a quarter turn
    (or the nearest evaluated rotation), as the model sees them (the generator's BGR shown as RGB)."""
    fig, axes = plt.subplots(len(sets), 2, figsize=(5, 2.6 * len(sets)), squeeze=False)
    k = n_rotations // 4
    for row, robustness in zip(axes, sets):
        scene, centre = robustness.scenes[0], robustness.centres[0]
        turned = scene.moved(rotated(scene.positions(), centre, n_rotations)[k])
        for ax, shown, title in zip(row, (scene, turned), ("as generated", f"rotated {360 * k / n_rotations:g}°")):
            ax.imshow(generator.render(shown)[:, :, ::-1])
            ax.set_title(f"{robustness.name}: {title}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
