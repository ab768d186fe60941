"""One run of clutrr-baselines' relation network, with or without an SRN/GRN: the
upstream's own ``run_experiment`` on a config built from its ``config/rn.yaml``
(patches.clutrr.run_config: the run's data folder, epochs, encoder dropout, l2 penalty,
seed and device). Test accuracies per epoch come from the metrics the upstream logs to
comet_ml (patches.clutrr.stubs.MetricRecorder). A refiner arm's step-count curve: the
upstream's test of the trained model (the last epoch's) with its refiner at 0, 1, r/2 and r
steps.
"""
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from adapters import clutrr as adapter
from refiners.schedule import fixed_steps
from refiners.settings import KindSettings
from patches.clutrr import upstream
from patches.clutrr.run_config import build_config
from patches.clutrr.stubs import MetricRecorder
from runners.clutrr_data import TEST_KS, TRAIN_FILE
from runners.common.checkpoints import RunCheckpoint
from runners.common.curves import steps_curve

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


class ResumableEpochs:
    """The upstream's epoch loop (``experiment._run_epochs``) resumable from the run's
    checkpoint without editing it: ``install`` wraps ``_run_epochs``, which first restores a
    checkpoint's state into the experiment (encoder and decoder, their optimizers and
    schedulers, ``epoch_index``, ``iteration_index``, the early-stopping metrics, the
    encoder's ``random_weights``) and the recorder's metrics, and ``_run_one_epoch_test``,
    which run_experiment calls at each epoch's end (rn.yaml's ``test_each_epoch``) and
    after which that state is handed to the checkpoint."""

    def __init__(self, checkpoint: RunCheckpoint, epochs: int, recorder: EpochProgress):
        self.checkpoint, self.epochs, self.recorder = checkpoint, epochs, recorder
        self.saved = 0  # the last epoch whose end was handed to the checkpoint

    def install(self, experiment_module: ModuleType) -> None:
        run_epochs, test = experiment_module._run_epochs, experiment_module._run_one_epoch_test

        def resumed_then_run(experiment):
            self.restore(experiment)
            return run_epochs(experiment)

        def test_then_save(experiment):
            accuracies = test(experiment)
            if experiment.epoch_index > self.saved:  # not the test run_experiment repeats after its last epoch
                self.saved = experiment.epoch_index
                self.checkpoint.epoch_end(experiment.epoch_index, self.epochs, lambda: self.state(experiment))
            return accuracies

        experiment_module._run_epochs, experiment_module._run_one_epoch_test = resumed_then_run, test_then_save

    def state(self, experiment) -> dict:
        return {"encoder": experiment.model.encoder.state_dict(), "decoder": experiment.model.decoder.state_dict(),
                "optimizers": [optimizer.state_dict() for optimizer in experiment.optimizers],
                "schedulers": [scheduler.state_dict() for scheduler in experiment.schedulers],
                "epoch_index": experiment.epoch_index, "iteration_index": dict(experiment.iteration_index),
                "validation_metrics": {key: dict(vars(metric)) for key, metric in experiment.validation_metrics.items()},
                "random_weights": experiment.model.encoder.random_weights, "metrics": list(self.recorder.metrics)}

    def restore(self, experiment) -> None:
        resumed = self.checkpoint.resume()
        if resumed is None:
            return
        state = resumed.state
        experiment.model.encoder.load_state_dict(state["encoder"])
        experiment.model.decoder.load_state_dict(state["decoder"])
        for optimizer, saved in zip(experiment.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(experiment.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        experiment.epoch_index = state["epoch_index"]
        experiment.iteration_index.update(state["iteration_index"])
        experiment.model.encoder.random_weights = state["random_weights"]
        for key, metric in experiment.validation_metrics.items():
            vars(metric).update(state["validation_metrics"][key])
            metric.reset = lambda metric=metric: delattr(metric, "reset")  # _run_epochs resets them first: not this once
        self.recorder.metrics[:] = state["metrics"]
        self.recorder.bar.update(resumed.epoch)
        self.saved = resumed.epoch


def train(settings: RunSettings, seed: int, root: Path, run_dir: Path, device: str,
          description: str = "epochs", resume: RunCheckpoint | None = None) -> dict:
    """Train and test one (arm, seed) with the upstream's run_experiment on ``device``; the
    caller has seeded the random generators. The refiner's parameters are drawn from
    ``seed`` (adapters.contract.refiner_rng). ``resume``: the run's resume checkpoint (the
    upstream's loop goes on from its last saved epoch: ``ResumableEpochs``). Returns the
    summary of summarise(), with a refiner arm's ``steps_curve`` (``test_at_steps``)."""
    recorder = EpochProgress(settings.epochs, description)
    try:
        with upstream(root, output=run_dir / "upstream.log") as modules:
            config = build_config(modules, settings.data_name, seed, run_dir, device, settings.epochs,
                                  settings.encoder_dropout, settings.l2)
            if settings.refiner is not None:
                adapter.install_on_construction(modules.experiment, replace(settings.refiner, seed=seed),
                                                settings.set_size, settings.padding)
            test, experiment = last_experiment(modules.experiment)
            if resume is not None:
                ResumableEpochs(resume, settings.epochs, recorder).install(modules.experiment)
            modules.experiment.run_experiment(config, recorder)
            summary = summarise(recorder.metrics)
            if settings.refiner is not None:
                last_test = {key: value for key, value in summary["curve"][-1].items() if key.startswith("test_")}
                summary["steps_curve"] = steps_curve(lambda count: test_at_steps(test, experiment["last"], count),
                                                     settings.refiner.steps,
                                                     last_test if settings.refiner.schedule is None else None)
    finally:
        recorder.bar.close()
    return summary


def last_experiment(experiment_module: ModuleType) -> tuple[Callable, dict]:
    """Wrap the upstream's ``_run_one_epoch_test`` in ``experiment_module`` (the freshly
    imported ``experiment``) so that it keeps the experiment it last tested (its model, its
    test dataloaders) under ``"last"`` of the returned dict; returns the original function
    and that dict."""
    test, kept = experiment_module._run_one_epoch_test, {}

    def keeping(experiment):
        kept["last"] = experiment
        return test(experiment)

    experiment_module._run_one_epoch_test = keeping
    return test, kept


def test_at_steps(test: Callable, experiment: Any, count: int) -> dict:
    """The upstream's test (``test``: its ``_run_one_epoch_test``) of the trained model with
    its refiner at ``count`` steps: ``test_k<k>`` per test file and ``test_mean_234``. Its
    metrics go to a recorder of their own, so the run's learning curve stays as it was."""
    experiment.comet_ml = MetricRecorder()
    with fixed_steps(experiment.model.encoder, count):  # the refiner is in the encoder (adapters.clutrr)
        accuracies = {int(name.split("_test.csv")[0].split(".")[-1]): float(accuracy)
                      for name, accuracy in test(experiment)}
    return {"test_mean_234": float(np.mean([accuracies[k] for k in BEST_OF])),
            **{f"test_k{k}": accuracies[k] for k in TEST_KS}}


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
