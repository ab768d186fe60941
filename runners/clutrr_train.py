"""One run of clutrr-baselines' relation network, with or without an SRN/GRN: the
upstream's own ``run_experiment`` on a config built from its ``config/rn.yaml``
(patches.clutrr.run_config: the run's data folder, epochs, encoder dropout, l2 penalty,
seed and device). Test accuracies per epoch come from the metrics the upstream logs to
comet_ml (patches.clutrr.stubs.MetricRecorder).
"""
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from adapters import clutrr as adapter
from refiners.settings import KindSettings
from patches.clutrr import upstream
from patches.clutrr.run_config import build_config
from patches.clutrr.stubs import MetricRecorder
from runners.clutrr_data import TEST_KS, TRAIN_FILE

BEST_OF = (2, 3, 4)  # the paper's selection: best average test accuracy on k=2,3,4 across epochs


@dataclass(frozen=True)
class RunSettings:
    """What one run trains: ``epochs`` training epochs on the data folder ``data_name``,
    with the refiner (its seed set per run) inserted with ``set_size`` and ``padding``
    (adapters.clutrr) when given."""

    data_name: str
    epochs: int
    encoder_dropout: float
    l2: float
    refiner: KindSettings | None = None
    set_size: int = adapter.SET_SIZE
    padding: str = "masked"


class EpochProgress(MetricRecorder):
    """The metric recorder, also advancing a progress bar once per epoch (at validation)."""

    def __init__(self, epochs: int, description: str):
        super().__init__()
        self.bar = tqdm(total=epochs, desc=description, unit="epoch", leave=False, file=sys.stderr)

    def log_metric(self, name, value, step=None, **kwargs):
        super().log_metric(name, value, step, **kwargs)
        if self._context == "validate" and name.endswith("_accuracy") and self.bar.n < self.bar.total:
            self.bar.update(1)
            self.bar.set_postfix(val_acc=f"{value:.3f}")


def train(settings: RunSettings, seed: int, root: Path, run_dir: Path, device: str,
          description: str = "epochs") -> dict:
    """Train and test one (arm, seed) with the upstream's run_experiment on ``device``; the
    caller has seeded the random generators. The refiner's parameters are drawn from
    ``seed`` (adapters.contract.refiner_rng). Returns the summary of summarise()."""
    recorder = EpochProgress(settings.epochs, description)
    try:
        with upstream(root, output=run_dir / "upstream.log") as modules:
            config = build_config(modules, settings.data_name, seed, run_dir, device, settings.epochs,
                                  settings.encoder_dropout, settings.l2)
            if settings.refiner is not None:
                adapter.install_on_construction(modules.experiment, replace(settings.refiner, seed=seed),
                                                settings.set_size, settings.padding)
            modules.experiment.run_experiment(config, recorder)
    finally:
        recorder.bar.close()
    return summarise(recorder.metrics)


def k_of_test_file(name: str) -> int | None:
    """"1.7_test.csv_accuracy" -> 7."""
    prefix = name.split("_test.csv")[0]
    return int(prefix.split(".")[-1]) if name.endswith("_test.csv_accuracy") else None


def summarise(metrics: list[tuple]) -> dict:
    """The paper's numbers: the epoch with the best mean test accuracy over k=2,3,4, its
    accuracy per k (``acc_k2`` .. ``acc_k10``) and that mean (``best_234``), the last
    epoch's mean (``final_234``), and the learning curve (``curve``: per epoch the training
    loss, the validation accuracy, the test accuracy per k and its mean over k=2,3,4)."""
    test: dict[int, dict[int, float]] = {k: {} for k in TEST_KS}
    validation, loss = {}, {}
    for context, name, step, value in metrics:
        if context == "test" and k_of_test_file(name) in test:
            test[k_of_test_file(name)][step] = value
        elif context == "validate" and name == f"{TRAIN_FILE}_accuracy":
            validation[step] = value
        elif context == "train" and name == f"{TRAIN_FILE}_loss":
            loss[step] = value
    epochs = sorted(validation)
    curves = {k: [test[k][e] for e in epochs] for k in TEST_KS}
    mean_234 = np.mean([curves[k] for k in BEST_OF], axis=0)
    best = int(np.argmax(mean_234))
    summary = {f"acc_k{k}": curves[k][best] for k in TEST_KS}
    summary.update(
        best_234=float(mean_234[best]),
        best_epoch=epochs[best],
        final_234=float(mean_234[-1]),
        curve=[{"epoch": epoch, "train_loss": loss[epoch], "validation_accuracy": validation[epoch],
                "test_mean_234": float(mean_234[index]), **{f"test_k{k}": curves[k][index] for k in TEST_KS}}
               for index, epoch in enumerate(epochs)],
    )
    return summary
