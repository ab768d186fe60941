"""One run of clutrr-baselines' relation network, with or without an SRN/GRN: the
upstream's own ``run_experiment`` on a config built from its ``config/rn.yaml``.

The config differs from rn.yaml only where the experiment says so (data folder, epochs,
encoder dropout, l2 penalty, seed) and where rn.yaml cannot run here: the device (rn.yaml
hard-codes ``cuda:0``; here ``cuda`` when available, else ``cpu``), the output paths
(``general.base_path`` = the run's folder instead of vendor/) and the commit id (the pin,
instead of asking git in the working directory). Test accuracies per epoch come from the
metrics the upstream logs to comet_ml (patches.clutrr.stubs.MetricRecorder).
"""
import glob
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from adapters import clutrr as adapter
from patches.clutrr import upstream
from patches.clutrr.stubs import MetricRecorder
from runners.clutrr_data import TEST_KS, TRAIN_FILE

UPSTREAM_CONFIG = "rn"
BEST_OF = (2, 3, 4)  # the paper's selection: best average test accuracy on k=2,3,4 across epochs


@dataclass(frozen=True)
class RunSettings:
    """What one run trains: ``epochs`` training epochs on the data folder ``data_name``."""

    data_name: str
    epochs: int
    encoder_dropout: float
    l2: float
    refiner: adapter.RefinerSettings | None = None


def device_name() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_config(modules, settings: RunSettings, seed: int, run_dir: Path):
    """The upstream config (an addict Dict) for one run, from rn.yaml through the
    upstream's own post-processing."""
    config = modules.config.get_base_config(UPSTREAM_CONFIG)
    config.general.id = UPSTREAM_CONFIG
    config.general.seed = seed
    config.general.base_path = str(run_dir)
    config.general.device = device_name()
    config.general.commit_id = modules.pin
    config.dataset.data_path = settings.data_name
    config.model.num_epochs = settings.epochs - 1  # the upstream's loop runs num_epochs + 1 epochs
    config.model.encoder.dropout = settings.encoder_dropout
    config.model.optimiser.l2_penalty = settings.l2
    config.log.comet.disabled = True
    return modules.config._post_process(config)


def prepare_dictionary(root: Path, data_name: str, log_dir: Path) -> None:
    """dict.json of the data folder, as the upstream's first run would write it, made
    before any run so that every run takes the same path (the upstream draws random
    numbers while making it). Leaves the random generators as they were."""
    folder = root / "data" / data_name
    if (folder / "dict.json").exists():
        return
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        with upstream(root, output=log_dir / "dictionary.log") as modules:
            config = build_config(modules, RunSettings(data_name, 1, 0.0, 0.0), 0, log_dir / "dictionary")
            config.dataset.train_file = glob.glob(os.path.join(folder, "*_train.csv"))[0]
            config.dataset.test_files = glob.glob(os.path.join(folder, "*_test.csv"))
            modules.data.generate_dictionary(config)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


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


def train(settings: RunSettings, seed: int, root: Path, run_dir: Path, description: str = "epochs") -> dict:
    """Train and test one (arm, seed) with the upstream's run_experiment; the caller has
    seeded the random generators. Returns the summary of summarise()."""
    recorder = EpochProgress(settings.epochs, description)
    try:
        with upstream(root, output=run_dir / "upstream.log") as modules:
            config = build_config(modules, settings, seed, run_dir)
            if settings.refiner is not None:
                _install_on_construction(modules, settings.refiner, seed)
            modules.experiment.run_experiment(config, recorder)
    finally:
        recorder.bar.close()
    return summarise(recorder.metrics)


def _install_on_construction(modules, refiner: adapter.RefinerSettings, seed: int) -> None:
    """Wrap the upstream's choose_model so the refiner is in the encoder before the
    trainer collects the parameters for the optimiser."""
    choose_model = modules.experiment.choose_model

    def choose_model_with_refiner(config):
        encoder, decoder = choose_model(config)
        adapter.install(encoder, refiner, seed)
        return encoder, decoder

    modules.experiment.choose_model = choose_model_with_refiner


def k_of_test_file(name: str) -> int | None:
    """"1.7_test.csv_accuracy" -> 7."""
    prefix = name.split("_test.csv")[0]
    return int(prefix.split(".")[-1]) if name.endswith("_test.csv_accuracy") else None


def summarise(metrics: list[tuple]) -> dict:
    """Per epoch test accuracy per k, validation accuracy and training loss, and the
    paper's numbers: the epoch with the best mean test accuracy over k=2,3,4, its
    accuracy per k (``acc_k2`` .. ``acc_k10``) and that mean (``best_234``)."""
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
        curves={"test": {str(k): curves[k] for k in TEST_KS}, "mean_234": mean_234.tolist(),
                "validation": [validation[e] for e in epochs], "train_loss": [loss[e] for e in epochs]},
    )
    return summary
