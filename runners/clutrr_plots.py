"""The figure of runners/clutrr.py besides its learning curves (``CURVE_METRICS``, drawn by
runners.common.curves): test accuracy per k, from the finished runs of each arm (arm
label -> one summary of runners.clutrr_train.summarise per seed)."""
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from runners.clutrr_data import TEST_KS
from runners.common.plots import save_figure
from runners.common.stats import Metric

TRAINED_KS = (1.5, 4.5)  # the band of k the arms are trained on (2, 3, 4)
CURVE_METRICS = [Metric("train_loss", "training loss"), Metric("validation_accuracy", "validation accuracy (%)", 100),
                 Metric("test_mean_234", "test accuracy, mean of k=2,3,4 (%)", 100)]
STEPS_CURVE_METRICS = [CURVE_METRICS[-1], *(Metric(f"test_k{k}", f"test accuracy, k={k} (%)", 100) for k in (2, 3, 4))]


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
