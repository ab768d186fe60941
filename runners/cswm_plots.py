"""The figure of runners/cswm.py: H@1 and MRR against the number of prediction steps."""
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from runners.common.plots import save_figure
from runners.common.stats import mean_std
from runners.cswm_train import PREDICTION_STEPS

OFFSET = 0.12  # prediction steps between neighbouring arms' markers, so error bars do not overlap


def plot_ranking(runs: dict[str, list[dict]], path: Path, title: str, chance: tuple[float, float]) -> Path:
    """Save ``ranking_figure`` at ``path``."""
    return save_figure(ranking_figure(runs, title, chance), path)


def ranking_figure(runs: dict[str, list[dict]], title: str, chance: tuple[float, float]) -> Figure:
    """H@1 and MRR (%) against prediction steps, mean ± std per arm (label -> metrics per
    seed), arms side by side, with the chance level (H@1, MRR as fractions) drawn."""
    figure = Figure(figsize=(10, 4.2))
    axes = figure.subplots(1, 2, sharex=True)
    shown = {arm: arm_runs for arm, arm_runs in runs.items() if arm_runs}
    for axis, (key, label), level in zip(axes, (("h1", "H@1 (%)"), ("mrr", "MRR (%)")), chance):
        for index, (arm, arm_runs) in enumerate(shown.items()):
            stats = [mean_std([100 * run[f"{key}_{steps}"] for run in arm_runs]) for steps in PREDICTION_STEPS]
            shift = (index - (len(shown) - 1) / 2) * OFFSET
            axis.errorbar([steps + shift for steps in PREDICTION_STEPS], [m for m, _ in stats],
                          yerr=[s for _, s in stats], marker="o", capsize=3,
                          label=f"{arm}: mean ± std over {len(arm_runs)} seed{'s' if len(arm_runs) > 1 else ''}")
        axis.axhline(100 * level, color="0.5", linestyle="--", linewidth=1, label=f"chance ({100 * level:.2f} %)")
        axis.set(xlabel="prediction steps", ylabel=label, xticks=PREDICTION_STEPS, ylim=(0, None))
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle(textwrap.fill(title, 90), fontsize=11)
    figure.tight_layout()
    return figure
