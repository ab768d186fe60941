"""The figure of runners/cswm.py: H@1 and MRR against the number of prediction steps."""
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from runners.common.plots import save_figure
from runners.common.stats import mean_std
from runners.cswm_train import PREDICTION_STEPS


def plot_ranking(runs: dict[str, list[dict]], path: Path, title: str) -> Path:
    """H@1 and MRR (%) against prediction steps, mean ± std per arm (label -> metrics per seed)."""
    figure = Figure(figsize=(9, 3.6))
    axes = figure.subplots(1, 2, sharex=True)
    for axis, (key, label) in zip(axes, (("h1", "H@1 (%)"), ("mrr", "MRR (%)"))):
        for arm_name, arm_runs in runs.items():
            if not arm_runs:
                continue
            stats = [mean_std([100 * run[f"{key}_{steps}"] for run in arm_runs]) for steps in PREDICTION_STEPS]
            axis.errorbar(PREDICTION_STEPS, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                          capsize=3, label=f"{arm_name} (n={len(arm_runs)})")
        axis.set(xlabel="prediction steps", ylabel=label, xticks=PREDICTION_STEPS)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(textwrap.fill(title, 130), fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)
