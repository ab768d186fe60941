"""One C-SWM run through the pinned upstream scripts: train.py, then eval.py at 1, 5 and
10 prediction steps, with or without the SRN (adapters.cswm), under patches.cswm, on the
run's device (train.py and eval.py take CUDA whenever it is available: they get --no-cuda
when the run asks for the CPU; runners.common.runs makes the run's GPU torch's current one).

What the scripts print stays off the console: train.py logs every line to ``log.txt`` in
the run's checkpoint folder, eval.py's output is appended to ``eval.txt`` beside it; the
console shows a bar over the epochs and one over the evaluations (``echo`` streams the
scripts' output there as well)."""
import io
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from adapters import cswm as adapter
from adapters.contract import RefinerSettings
from patches import cswm, vendor
from runners.common.settings import Checked, Count, Positive

PREDICTION_STEPS = (1, 5, 10)


@dataclass(frozen=True)
class TrainSettings(Checked):
    """train.py's arguments that an experiment sets (the rest keep upstream's defaults)."""

    num_objects: Count
    epochs: Count
    batch_size: Count
    learning_rate: Positive
    encoder: str
    embedding_dim: Count
    action_dim: Count
    hidden_dim: Count
    copy_action: bool

    def argv(self) -> list[str]:
        argv = ["--num-objects", str(self.num_objects), "--epochs", str(self.epochs),
                "--batch-size", str(self.batch_size), "--learning-rate", repr(self.learning_rate),
                "--encoder", self.encoder, "--embedding-dim", str(self.embedding_dim),
                "--action-dim", str(self.action_dim), "--hidden-dim", str(self.hidden_dim)]
        return argv + (["--copy-action"] if self.copy_action else [])


def device_argv(device: torch.device) -> list[str]:
    """train.py's and eval.py's flags for ``device``: they use CUDA whenever it is
    available, so only the CPU on a GPU machine needs saying (--no-cuda)."""
    return ["--no-cuda"] if device.type == "cpu" and torch.cuda.is_available() else []


class ScriptOutput(io.TextIOBase):
    """An upstream script's console output: appended to ``log`` (if given), shown on ``echo``
    (if given), and each train.py "====> Epoch: N" line advances ``bar`` to N."""

    def __init__(self, log: io.TextIOBase | None = None, echo: io.TextIOBase | None = None, bar: tqdm | None = None):
        self.log, self.echo, self.bar = log, echo, bar

    def write(self, text: str) -> int:
        for stream in (self.log, self.echo):
            if stream is not None:
                stream.write(text)
        for epoch in re.findall(r"====> Epoch: (\d+)", text):
            if self.bar is not None:
                self.bar.update(int(epoch) - self.bar.n)
        return len(text)


def train(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, settings: TrainSettings, seed: int,
          refiner: RefinerSettings | None, device: torch.device = torch.device("cpu"), echo: bool = False) -> dict:
    """Run train.py (seed ``seed``) on ``dataset``; it writes model.pt, metadata.pkl and
    log.txt into the folder ``checkpoint``. Returns train.py's globals."""
    argv = [*settings.argv(), "--dataset", str(dataset), "--seed", str(seed),
            "--save-folder", str(checkpoint.parent), "--name", checkpoint.name, *device_argv(device)]
    with tqdm(total=settings.epochs, desc="epochs", unit="epoch", leave=False) as bar:
        output = ScriptOutput(echo=sys.stderr if echo else None, bar=bar)
        return cswm.run_script(upstream, "train.py", argv, modules=_modules(upstream, refiner), output=output)


def evaluate(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, steps: int, refiner: RefinerSettings | None,
             device: torch.device = torch.device("cpu"), echo: bool = False) -> dict:
    """Run eval.py on the checkpoint folder with ``--num-steps steps`` (its output appended
    to ``eval.txt`` there). Returns its globals (``hits_at``, ``rr_sum``, ``num_samples``,
    ``next_state_flat`` [N, K * D], ...), from which its numbers are read."""
    argv = ["--dataset", str(dataset), "--save-folder", str(checkpoint), "--num-steps", str(steps),
            *device_argv(device)]
    with open(checkpoint / "eval.txt", "a") as log:
        output = ScriptOutput(log=log, echo=sys.stderr if echo else None)
        return cswm.run_script(upstream, "eval.py", argv, modules=_modules(upstream, refiner), output=output)


def _modules(upstream: vendor.Upstream, refiner: RefinerSettings | None):
    """The upstream's ``modules`` for the scripts: None (their own) for the baseline."""
    if refiner is None:
        return None
    return adapter.install_on_construction(vendor.import_modules(upstream, ["modules"]).modules, refiner)


def train_and_evaluate(upstream: vendor.Upstream, train_set: Path, eval_set: Path, checkpoint: Path,
                       settings: TrainSettings, seed: int, refiner: RefinerSettings | None,
                       device: torch.device = torch.device("cpu"), echo: bool = False) -> dict:
    """Metrics of one seed: ``h1_<n>`` and ``mrr_<n>`` for n in PREDICTION_STEPS,
    ``samples`` (ranked eval samples), ``spread`` (state_spread of the states of the
    1-step evaluation) and ``train_loss`` (train.py's best average epoch loss). The
    scripts' globals (each holds its whole dataset in memory) are dropped as soon as
    their numbers are read. ``echo``: stream the scripts' output to the console too."""
    trained = train(upstream, train_set, checkpoint, settings, seed, refiner, device, echo)
    metrics = {"train_loss": float(trained["best_loss"])}
    del trained
    for steps in tqdm(PREDICTION_STEPS, desc="evaluation (prediction steps)", unit="eval", leave=False):
        evaluated = evaluate(upstream, eval_set, checkpoint, steps, refiner, device, echo)
        samples = metrics["samples"] = evaluated["num_samples"]
        metrics[f"h1_{steps}"] = evaluated["hits_at"][1] / samples
        metrics[f"mrr_{steps}"] = float(evaluated["rr_sum"]) / samples
        if steps == 1:
            metrics["spread"] = state_spread(evaluated["next_state_flat"])
        del evaluated
    return metrics


def state_spread(states: torch.Tensor) -> float:
    """Root mean squared distance of the states [N, F] to their mean: 0 for an encoder that
    maps every observation to one point (which eval.py ranks first on every tie)."""
    return math.sqrt(float((states - states.mean(dim=0)).pow(2).sum(dim=1).mean()))
