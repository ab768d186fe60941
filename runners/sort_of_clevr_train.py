"""One run: the upstream RN, with or without SRN, trained as the upstream main.py trains
it, then evaluated (test accuracy per question type, robustness, and a refiner's
step-count curve, whose 0 steps are the paper's ablation).

``MainLoop`` is main.py's ``train()`` and ``test()`` on in-memory splits: each epoch
shuffles main.py's relational and non-relational question lists in place with python's
``random`` (so each epoch permutes the previous order, as main.py's in-place shuffle
does), then alternates one relational and one non-relational batch through the upstream
``RN.train_``; only full batches run (the RN's coordinate tensor is sized to the batch);
``test`` averages the upstream ``RN.test_`` over full batches. With the same seeds it
gives main.py's per-epoch accuracies exactly (tests/runners/test_sort_of_clevr_train.py
runs main.py itself to check).
"""
import random
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from refiners.schedule import fixed_steps
from refiners.settings import KindSettings
from adapters.relational_networks import FeatureMapRefiner, install
from patches import relational_networks
from patches.vendor import Upstream
from runners import sort_of_clevr_robustness as robustness
from runners.common.atomic import replaced_atomically
from runners.common.checkpoints import RunCheckpoint
from runners.common.errors import UsageError
from runners.common.curves import steps_curve
from runners.sort_of_clevr_data import QUESTION_KINDS, Split, load_split, model_images
from runners.sort_of_clevr_evaluation import accuracies
from runners.sort_of_clevr_robustness import RobustnessSet
from runners.sort_of_clevr_scenes import SortOfClevr


@dataclass(frozen=True)
class SortOfClevrData:
    """What every run of a command shares: the upstream generator, the train, validation
    and test splits, the robustness sets (synthetic, dataset) and how many generator
    images were drawn to find the dataset set's easy ones."""

    generator: SortOfClevr
    train: Split
    validation: Split
    test: Split
    robustness_sets: list[RobustnessSet]
    generated_for_dataset: int

    @classmethod
    def load(cls, upstream: Upstream, cache_dir: Path, settings: Any) -> "SortOfClevrData":
        """The data of ``settings`` (the runner's Settings), from ``cache_dir`` or generated
        there; UsageError when a split is too small for one full batch."""
        generator = SortOfClevr(upstream)
        check_sizes(settings, generator.questions_per_image)
        splits = {name: load_split(generator, cache_dir, name, getattr(settings, f"{name}_images"), settings.clutter)
                  for name in ("train", "validation", "test")}
        synthetic = robustness.synthetic_set(generator, settings.synthetic_positions, settings.clutter)
        dataset, generated = robustness.dataset_set(generator, settings.dataset_images, cache_dir, settings.clutter)
        return cls(generator, **splits, robustness_sets=[synthetic, dataset], generated_for_dataset=generated)


def check_sizes(settings: Any, questions_per_image: int) -> None:
    """The upstream only runs full batches: training and validation need one of each question kind."""
    least = -(-settings.batch_size // questions_per_image)
    for key, flag in (("train_images", "--images"), ("validation_images", "validation_images")):
        if getattr(settings, key) < least:
            raise UsageError(f"{flag} must be at least {least} (one batch of {settings.batch_size} questions), "
                             f"got {getattr(settings, key)}")


def build_model(model_module: ModuleType, batch_size: int, lr: float, device: torch.device,
                refiner: KindSettings | None = None) -> tuple[nn.Module, FeatureMapRefiner | None]:
    """The upstream ``RN(args)`` (its weights from the global torch RNG, its own Adam) on
    ``device``, with the SRN of ``refiner`` inserted when it is given (its weights from
    ``refiner.seed``); returns (model, the inserted refiner or None)."""
    args = SimpleNamespace(batch_size=batch_size, lr=lr, cuda=device.type == "cuda")
    model = model_module.RN(args).to(device)
    return model, None if refiner is None else install(model, refiner)


def batch_tensors(split: Split, kind: str, rows: np.ndarray, device: torch.device):
    """main.py's ``tensor_data``: the questions ``rows`` (main.py list positions) of
    ``kind`` -> (images [B, 3, 75, 75] float32, questions [B, 11] float32, answers [B] int64)."""
    questions, answers, image_index = split.questions(kind)
    return (
        model_images(split.images[image_index[rows]]).to(device),
        torch.from_numpy(questions[rows]).to(device),
        torch.from_numpy(answers[rows]).to(device),
    )


class MainLoop:
    """main.py's train()/test() for ``model`` on the ``train`` split (see the module docstring)."""

    def __init__(self, model: nn.Module, train: Split, batch_size: int, device: torch.device):
        self.model, self.train_split, self.batch_size, self.device = model, train, batch_size, device
        n_questions = len(train) * train.rel_questions.shape[1]
        self.order = {kind: list(range(n_questions)) for kind in QUESTION_KINDS}  # main.py's rel_train, norel_train

    def _rows(self, order: list[int], batch_idx: int) -> np.ndarray:
        return np.asarray(order[self.batch_size * batch_idx: self.batch_size * (batch_idx + 1)])

    def train_epoch(self, desc: str = "training") -> tuple[float, float]:
        """One epoch of main.py's train(); returns the mean batch accuracies (rel, norel) in %."""
        self.model.train()
        for kind in QUESTION_KINDS:
            random.shuffle(self.order[kind])
        accuracies = {kind: [] for kind in QUESTION_KINDS}
        n_batches = len(self.order["rel"]) // self.batch_size
        for batch_idx in tqdm(range(n_batches), desc=desc, unit="batch", leave=False):
            for kind in QUESTION_KINDS:
                tensors = batch_tensors(self.train_split, kind, self._rows(self.order[kind], batch_idx), self.device)
                accuracies[kind].append(self.model.train_(*tensors).item())
        return tuple(sum(values) / len(values) for values in accuracies.values())

    @torch.no_grad()
    def test(self, split: Split) -> tuple[float, float]:
        """main.py's test() on ``split``: mean of the upstream test_ over full batches (rel, norel) in %."""
        self.model.eval()
        order = list(range(len(split) * split.rel_questions.shape[1]))
        accuracies = {kind: [] for kind in QUESTION_KINDS}
        for batch_idx in range(len(order) // self.batch_size):
            for kind in QUESTION_KINDS:
                tensors = batch_tensors(split, kind, self._rows(order, batch_idx), self.device)
                accuracies[kind].append(self.model.test_(*tensors))
        return tuple((sum(values) / len(values)).item() for values in accuracies.values())


def fit(loop: MainLoop, validation: Split, epochs: int, checkpoint: Path,
        resume: RunCheckpoint | None = None) -> tuple[list[dict], int]:
    """Train ``epochs`` epochs, test on ``validation`` after each (as main.py tests after
    each epoch), keep the weights of the epoch with the best validation accuracy (the
    mean of relational and non-relational) at ``checkpoint`` and load them at the end.
    Returns the per-epoch log and the best epoch (1-based). With ``resume`` (the run's
    resume checkpoint), goes on from its last saved epoch and saves the loop's state at
    epoch ends: the RN with its own Adam, main.py's question orders, the log, the best
    epoch and its weights."""
    history, best_epoch, best = [], 0, -1.0
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    resumed = None if resume is None else resume.resume()
    if resumed is not None:
        state = resumed.state
        loop.model.load_state_dict(state["model"])
        loop.model.optimizer.load_state_dict(state["optimizer"])
        loop.order = state["order"]
        history, best_epoch, best = state["history"], state["best_epoch"], state["best"]
        with replaced_atomically(checkpoint) as temporary:
            temporary.write_bytes(state["best_weights"])

    def loop_state() -> dict:
        return {"model": loop.model.state_dict(), "optimizer": loop.model.optimizer.state_dict(),
                "order": loop.order, "history": history, "best_epoch": best_epoch, "best": best,
                "best_weights": checkpoint.read_bytes()}

    for epoch in range(len(history) + 1, epochs + 1):
        train_rel, train_norel = loop.train_epoch(desc=f"epoch {epoch}/{epochs}")
        val_rel, val_norel = loop.test(validation)
        history.append({"epoch": epoch, "train_rel": train_rel, "train_norel": train_norel,
                        "validation_rel": val_rel, "validation_norel": val_norel})
        tqdm.write(f"  epoch {epoch}: train rel {train_rel:.1f}% norel {train_norel:.1f}% | "
                   f"validation rel {val_rel:.1f}% norel {val_norel:.1f}%")
        if (val_rel + val_norel) / 2 > best:
            best_epoch, best = epoch, (val_rel + val_norel) / 2
            with replaced_atomically(checkpoint) as temporary:
                torch.save(loop.model.state_dict(), temporary)
        if resume is not None:
            resume.epoch_end(epoch, epochs, loop_state)
    loop.model.load_state_dict(torch.load(checkpoint, map_location=loop.device))
    return history, best_epoch


def train_and_evaluate(data: SortOfClevrData, model_module: ModuleType, settings: Any,
                       refiner: KindSettings | None, checkpoint: Path, device: torch.device,
                       resume: RunCheckpoint | None = None) -> dict:
    """One run (called after seeding): train the RN (with the SRN of ``refiner``, if any)
    on ``data`` as ``settings`` (the runner's Settings) say (going on from ``resume``, the
    run's resume checkpoint, when given), keep its best validation epoch at
    ``checkpoint``, and evaluate it: test accuracy per question type with the upstream's
    output dropout and without, robustness without it, and for a refiner its step-count
    curve (the test accuracies with the refiner at 0, 1, r/2 and r steps; at 0: the
    paper's ablation). Returns the run's metrics."""
    batch_size = settings.batch_size
    model, srn = build_model(model_module, batch_size, settings.lr, device, refiner)
    history, best_epoch = fit(MainLoop(model, data.train, batch_size, device), data.validation, settings.epochs,
                              checkpoint, resume)
    metrics = {"best_epoch": best_epoch, "curve": history, "checkpoint": checkpoint.name}
    test = accuracies(model, data.test, batch_size, device)
    metrics.update(test)
    with relational_networks.output_dropout_off(model):
        no_dropout = accuracies(model, data.test, batch_size, device)
        metrics.update({f"{key}_no_dropout": value for key, value in no_dropout.items()})
        metrics.update(robustness.timed_evaluation(model, data.generator, data.robustness_sets, settings.rotations,
                                                   batch_size, device))
    if srn is not None:
        def at_steps(count: int) -> dict:
            with fixed_steps(model, count):
                return accuracies(model, data.test, batch_size, device)
        metrics["steps_curve"] = steps_curve(at_steps, refiner.steps, test if refiner.schedule is None else None)
    return metrics
