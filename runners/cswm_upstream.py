"""One C-SWM run through the pinned upstream scripts: train.py, then eval.py at 1, 5 and
10 prediction steps, with or without the SRN (adapters.cswm), under patches.cswm."""
import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from adapters.cswm import SRNSettings, modules_with_srn
from patches import cswm, vendor

PREDICTION_STEPS = (1, 5, 10)


@dataclass(frozen=True)
class TrainSettings:
    """train.py's arguments that an experiment sets (the rest keep upstream's defaults)."""

    num_objects: int
    epochs: int
    batch_size: int
    learning_rate: float
    encoder: str
    embedding_dim: int
    action_dim: int
    hidden_dim: int
    copy_action: bool

    def argv(self) -> list[str]:
        argv = ["--num-objects", str(self.num_objects), "--epochs", str(self.epochs),
                "--batch-size", str(self.batch_size), "--learning-rate", repr(self.learning_rate),
                "--encoder", self.encoder, "--embedding-dim", str(self.embedding_dim),
                "--action-dim", str(self.action_dim), "--hidden-dim", str(self.hidden_dim)]
        return argv + (["--copy-action"] if self.copy_action else [])


def train(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, settings: TrainSettings, seed: int,
          srn: SRNSettings | None) -> dict:
    """Run train.py (seed ``seed``) on ``dataset``; it writes model.pt, metadata.pkl and
    log.txt into the folder ``checkpoint``. Returns train.py's globals."""
    argv = [*settings.argv(), "--dataset", str(dataset), "--seed", str(seed),
            "--save-folder", str(checkpoint.parent), "--name", checkpoint.name]
    return cswm.run_script(upstream, "train.py", argv, modules=_modules(upstream, srn))


def evaluate(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, steps: int, srn: SRNSettings | None) -> dict:
    """Run eval.py on the checkpoint folder with ``--num-steps steps``. Returns its globals
    (``hits_at``, ``rr_sum``, ``num_samples``, ``next_state_flat`` [N, K * D], ...); what it
    prints is read from them instead."""
    argv = ["--dataset", str(dataset), "--save-folder", str(checkpoint), "--num-steps", str(steps)]
    with contextlib.redirect_stdout(io.StringIO()):
        return cswm.run_script(upstream, "eval.py", argv, modules=_modules(upstream, srn))


def _modules(upstream: vendor.Upstream, srn: SRNSettings | None):
    return None if srn is None else modules_with_srn(upstream, srn)


def train_and_evaluate(upstream: vendor.Upstream, train_set: Path, eval_set: Path, checkpoint: Path,
                       settings: TrainSettings, seed: int, srn: SRNSettings | None) -> dict:
    """Metrics of one seed: ``h1_<n>`` and ``mrr_<n>`` for n in PREDICTION_STEPS,
    ``samples`` (ranked eval samples), ``spread`` (state_spread of the states of the
    1-step evaluation) and ``train_loss`` (train.py's best average epoch loss). The
    scripts' globals (each holds its whole dataset in memory) are dropped as soon as
    their numbers are read."""
    metrics = {"train_loss": float(train(upstream, train_set, checkpoint, settings, seed, srn)["best_loss"])}
    for steps in PREDICTION_STEPS:
        evaluated = evaluate(upstream, eval_set, checkpoint, steps, srn)
        samples = metrics["samples"] = evaluated["num_samples"]
        metrics[f"h1_{steps}"] = evaluated["hits_at"][1] / samples
        metrics[f"mrr_{steps}"] = float(evaluated["rr_sum"]) / samples
        if steps == 1:
            metrics["spread"] = state_spread(evaluated["next_state_flat"])
        del evaluated
        tqdm.write(f"  {steps} step(s), {samples} samples: H@1 {metrics[f'h1_{steps}']:.3f}, "
                   f"MRR {metrics[f'mrr_{steps}']:.3f}")
    return metrics


def state_spread(states: torch.Tensor) -> float:
    """Root mean squared distance of the states [N, F] to their mean: 0 for an encoder that
    maps every observation to one point (which eval.py ranks first on every tie)."""
    return math.sqrt(float((states - states.mean(dim=0)).pow(2).sum(dim=1).mean()))
