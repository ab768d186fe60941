"""The upstream RN, with or without SRN, trained as the upstream main.py trains it.

``MainLoop`` is main.py's ``train()`` and ``test()`` on in-memory splits: each epoch
shuffles main.py's relational and non-relational question lists in place with python's
``random`` (so each epoch permutes the previous order, as main.py's in-place shuffle
does), then alternates one relational and one non-relational batch through the upstream
``RN.train_``; only full batches run (the RN's coordinate tensor is sized to the batch);
``test`` averages the upstream ``RN.test_`` over full batches. With the same seeds it
gives main.py's per-epoch accuracies exactly (tests/runners/sortofclevr/test_training.py
runs main.py itself to check).
"""
import os
import random
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from adapters.relational_networks import FeatureMapRefiner, add_srn
from runners.sortofclevr.data import KINDS, Split, model_images


@dataclass(frozen=True)
class SrnSettings:
    steps: int
    inner_lr: float
    embed_dim: int
    seed: int  # initialises the SRN's weights (the RN's come from the global torch seed)


def build_model(model_module: ModuleType, batch_size: int, lr: float, device: torch.device,
                srn: SrnSettings | None = None) -> tuple[nn.Module, FeatureMapRefiner | None]:
    """The upstream ``RN(args)`` (its weights from the global torch RNG, its own Adam) on
    ``device``, with an SRN inserted when ``srn`` is given; returns (model, refiner)."""
    args = SimpleNamespace(batch_size=batch_size, lr=lr, cuda=device.type == "cuda")
    model = model_module.RN(args).to(device)
    refiner = None if srn is None else add_srn(model, srn.steps, srn.inner_lr, srn.embed_dim, srn.seed)
    return model, refiner


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
        self.order = {kind: list(range(n_questions)) for kind in KINDS}  # main.py's rel_train, norel_train

    def _rows(self, order: list[int], batch_idx: int) -> np.ndarray:
        return np.asarray(order[self.batch_size * batch_idx: self.batch_size * (batch_idx + 1)])

    def train_epoch(self, desc: str = "training") -> tuple[float, float]:
        """One epoch of main.py's train(); returns the mean batch accuracies (rel, norel) in %."""
        self.model.train()
        for kind in KINDS:
            random.shuffle(self.order[kind])
        accuracies = {kind: [] for kind in KINDS}
        n_batches = len(self.order["rel"]) // self.batch_size
        for batch_idx in tqdm(range(n_batches), desc=desc, unit="batch", leave=False):
            for kind in KINDS:
                tensors = batch_tensors(self.train_split, kind, self._rows(self.order[kind], batch_idx), self.device)
                accuracies[kind].append(self.model.train_(*tensors).item())
        return tuple(sum(values) / len(values) for values in accuracies.values())

    @torch.no_grad()
    def test(self, split: Split) -> tuple[float, float]:
        """main.py's test() on ``split``: mean of the upstream test_ over full batches (rel, norel) in %."""
        self.model.eval()
        order = list(range(len(split) * split.rel_questions.shape[1]))
        accuracies = {kind: [] for kind in KINDS}
        for batch_idx in range(len(order) // self.batch_size):
            for kind in KINDS:
                tensors = batch_tensors(split, kind, self._rows(order, batch_idx), self.device)
                accuracies[kind].append(self.model.test_(*tensors))
        return tuple((sum(values) / len(values)).item() for values in accuracies.values())


def fit(loop: MainLoop, validation: Split, epochs: int, checkpoint: Path) -> tuple[list[dict], int]:
    """Train ``epochs`` epochs, test on ``validation`` after each (as main.py tests after
    each epoch), keep the weights of the epoch with the best validation accuracy (the
    mean of relational and non-relational) at ``checkpoint`` and load them at the end.
    Returns the per-epoch log and the best epoch (1-based)."""
    history, best_epoch, best = [], 0, -1.0
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, epochs + 1):
        train_rel, train_norel = loop.train_epoch(desc=f"epoch {epoch}/{epochs}")
        val_rel, val_norel = loop.test(validation)
        history.append({"epoch": epoch, "train_rel": train_rel, "train_norel": train_norel,
                        "validation_rel": val_rel, "validation_norel": val_norel})
        tqdm.write(f"  epoch {epoch}: train rel {train_rel:.1f}% norel {train_norel:.1f}% | "
                   f"validation rel {val_rel:.1f}% norel {val_norel:.1f}%")
        if (val_rel + val_norel) / 2 > best:
            best_epoch, best = epoch, (val_rel + val_norel) / 2
            temporary = checkpoint.with_name(f".{checkpoint.name}.{os.getpid()}.tmp")
            torch.save(loop.model.state_dict(), temporary)
            os.replace(temporary, checkpoint)
    loop.model.load_state_dict(torch.load(checkpoint, map_location=loop.device))
    return history, best_epoch
