"""Figures of runners/clutrr.py, from the finished runs of each arm (arm label -> one
summary of runners.clutrr_train.summarise per seed)."""
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from runners.clutrr_data import TEST_KS
from runners.common.plots import save_figure

TRAINED_KS = (1.5, 4.5)  # the band of k the arms are trained on (2, 3, 4)


def accuracy_by_k(runs: Mapping[str, Sequence[dict]], path: Path) -> Path:
    """Test accuracy (%) per k at each run's best epoch: mean over seeds, with the sample
    std as error bars when there are two seeds or more."""
    figure = Figure(figsize=(6, 4), layout="tight")
    axis = figure.subplots()
    for arm, metrics in runs.items():
        values = np.array([[run[f"acc_k{k}"] * 100 for k in TEST_KS] for run in metrics])  # [seeds, ks]
        axis.errorbar(TEST_KS, values.mean(0), yerr=values.std(0, ddof=1) if len(values) > 1 else None,
                      marker="o", capsize=3, label=f"{arm} (n={len(values)})")
    axis.axvspan(*TRAINED_KS, color="0.9", zorder=0)
    axis.set(xlabel="k (relations to chain; trained on 2, 3, 4)", ylabel="test accuracy (%)",
             title="CLUTRR, at each run's best epoch on k=2,3,4")
    axis.legend()
    return save_figure(figure, path)


def learning_curves(runs: Mapping[str, Sequence[dict]], path: Path) -> Path:
    """Mean test accuracy (%) on k=2,3,4 per epoch, mean over seeds."""
    figure = Figure(figsize=(6, 4), layout="tight")
    axis = figure.subplots()
    for arm, metrics in runs.items():
        curves = np.array([run["curves"]["mean_234"] for run in metrics]) * 100  # [seeds, epochs]
        epochs = np.arange(1, curves.shape[1] + 1)
        axis.plot(epochs, curves.mean(0), marker=".", label=f"{arm} (n={len(curves)})")
    axis.set(xlabel="epoch", ylabel="mean test accuracy on k=2,3,4 (%)", title="CLUTRR learning curves (mean over seeds)")
    axis.legend(fontsize="small")
    return save_figure(figure, path)
