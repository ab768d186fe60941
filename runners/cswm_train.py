"""One C-SWM run through the pinned upstream scripts: train.py, then eval.py at 1, 5 and
10 prediction steps, with or without the SRN (adapters.cswm), under patches.cswm, on the
run's device (train.py and eval.py take CUDA whenever it is available: they get --no-cuda
when the run asks for the CPU; runners.common.runs makes the run's GPU torch's current one).

What the scripts print stays off the console: train.py logs every line to ``log.txt`` in
the run's checkpoint folder, eval.py's output is appended to ``eval.txt`` beside it; the
console shows a bar over the epochs and one over the evaluations (``echo`` streams the
scripts' output there as well).

The learning curve: train.py's "Average loss" of every epoch and, every ``eval_every``
epochs, eval.py's ranking of the model as it is at the end of that epoch, on the run's
evaluation set (the same set as the final numbers). The evaluation runs between two
epochs, from a snapshot of the weights in ``<checkpoint>/curve/``, with every random
generator saved and restored around it, so the training is the same with or without it.

A refiner arm's step-count curve: after training, eval.py's 1-step ranking of the saved
model with its refiner at 0, 1, r/2 and r steps (the checkpoint loaded into a refiner of
that many steps and no schedule)."""
import builtins
import io
import math
import re
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from adapters import cswm as adapter
from refiners.settings import KindSettings
from runners.common import random_states
from runners.common.checkpoints import RunCheckpoint
from runners.common.curves import steps_curve
from patches import cswm, vendor
from declared.settings import Checked, Count, Positive

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


EPOCH_LINE = re.compile(r"====> Epoch: (\d+) Average loss: (\S+)")  # train.py, after each epoch


class ScriptOutput(io.TextIOBase):
    """An upstream script's console output: appended to ``log`` (if given), shown on ``echo``
    (if given); each train.py "====> Epoch: N Average loss: L" line advances ``bar`` to N
    and sets ``losses[N] = L``."""

    def __init__(self, log: io.TextIOBase | None = None, echo: io.TextIOBase | None = None, bar: tqdm | None = None):
        self.log, self.echo, self.bar = log, echo, bar
        self.losses: dict[int, float] = {}

    def write(self, text: str) -> int:
        for stream in (self.log, self.echo):
            if stream is not None:
                stream.write(text)
        for epoch, loss in EPOCH_LINE.findall(text):
            self.losses[int(epoch)] = float(loss)
            if self.bar is not None:
                self.bar.update(int(epoch) - self.bar.n)
        return len(text)


def watching_epochs(modules: ModuleType, on_epoch_end: Callable[[nn.Module, int], None]) -> ModuleType:
    """A copy of the upstream's ``modules`` whose ``ContrastiveSWM`` calls
    ``on_epoch_end(model, epoch)`` when train.py starts the epoch after ``epoch`` (its
    ``model.train()`` at the top of each epoch; the last epoch's end is the script's end).
    A model's ``first_epoch`` is the epoch its first ``model.train()`` starts (a resumed
    loop's). The model is otherwise the upstream's: same parameters, same computation."""

    class ContrastiveSWMWatched(modules.ContrastiveSWM):
        epochs_started = 0
        first_epoch = 1

        def train(self, mode: bool = True):
            if mode:
                if self.epochs_started:
                    on_epoch_end(self, self.first_epoch - 1 + self.epochs_started)
                self.epochs_started += 1
            return super().train(mode)

    return vendor.module_copy(modules, ContrastiveSWM=ContrastiveSWMWatched)


class ResumableEpochs:
    """train.py's epoch loop, resumable from the run's checkpoint without editing train.py.
    ``range`` is given to train.py as its ``range``, which its code calls once, for
    ``for epoch in range(1, args.epochs + 1)``, after building its model and Adam: there it
    restores a checkpoint's state into train.py's globals (the model, Adam, ``step``,
    ``best_loss``), its files (the best ``model.pt``, ``log.txt`` as it was then) and the
    runner's (``losses``, ``kept``: train.py's printed losses and the curve's evaluations
    so far), and returns the epochs left. ``save(epoch)`` at each epoch end (train.py's
    next ``model.train()``, or its end) hands that state to the checkpoint."""

    def __init__(self, checkpoint: RunCheckpoint, epochs: int, folder: Path, losses: dict, kept: dict):
        self.checkpoint, self.epochs, self.folder, self.losses, self.kept = checkpoint, epochs, folder, losses, kept
        self.script: dict = {}
        self.done = 0

    def range(self, start: int, stop: int) -> range:
        if (start, stop) != (1, self.epochs + 1):
            raise RuntimeError(f"the upstream train.py changed: its epoch loop asks for range({start}, {stop})")
        self.script = sys._getframe(1).f_globals  # the caller is train.py's own code
        resumed = self.checkpoint.resume()
        if resumed is not None:
            state = resumed.state
            self.script["model"].load_state_dict(state["model"])
            self.script["optimizer"].load_state_dict(state["optimizer"])
            self.script["step"], self.script["best_loss"] = state["step"], state["best_loss"]
            (self.folder / "model.pt").write_bytes(state["best_model"])
            (self.folder / "log.txt").write_text(state["log"])  # train.py appends to it from here
            self.losses.update(state["losses"])
            self.kept.update(state["kept"])
            self.done = resumed.epoch
            self.script["model"].first_epoch = self.done + 1
        return builtins.range(self.done + 1, stop)

    def save(self, epoch: int) -> None:
        self.checkpoint.epoch_end(epoch, self.epochs, lambda: {
            "model": self.script["model"].state_dict(), "optimizer": self.script["optimizer"].state_dict(),
            "step": self.script["step"], "best_loss": self.script["best_loss"],
            "best_model": (self.folder / "model.pt").read_bytes(), "log": (self.folder / "log.txt").read_text(),
            "losses": dict(self.losses), "kept": dict(self.kept)})


def train_argv(settings: TrainSettings, dataset: Path, seed: int, checkpoint: Path, device: torch.device) -> list[str]:
    """train.py's arguments for one run: it writes into the folder ``checkpoint``."""
    return [*settings.argv(), "--dataset", str(dataset), "--seed", str(seed),
            "--save-folder", str(checkpoint.parent), "--name", checkpoint.name, *device_argv(device)]


def built_by_train_py(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, settings: TrainSettings, seed: int,
                      refiner: KindSettings | None, device: torch.device) -> dict:
    """train.py's globals once it has built its data loader, model and Adam for a run of
    these arguments (``train``'s), its epoch loop given no epoch: the ``model`` exactly as
    such a run starts training it, its ``optimizer`` and its ``train_loader``."""
    return cswm.run_script(upstream, "train.py", train_argv(settings, dataset, seed, checkpoint, device),
                           modules=_modules(upstream, refiner), output=ScriptOutput(),
                           script_globals={"range": lambda start, stop: builtins.range(0)})


def train(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, settings: TrainSettings, seed: int,
          refiner: KindSettings | None, device: torch.device = torch.device("cpu"), echo: bool = False,
          on_epoch_end: Callable[[nn.Module, int], None] | None = None, resume: RunCheckpoint | None = None,
          kept: dict | None = None) -> tuple[dict, dict[int, float]]:
    """Run train.py (seed ``seed``) on ``dataset``; it writes model.pt, metadata.pkl and
    log.txt into the folder ``checkpoint``. ``on_epoch_end(model, epoch)``: called after
    every epoch (``watching_epochs``). ``resume``: the run's resume checkpoint, train.py
    going on from its last saved epoch (``ResumableEpochs``), with ``kept`` (what
    ``on_epoch_end`` records) saved and restored alongside. Returns train.py's globals and
    its average loss per epoch (epoch -> loss, as train.py prints it)."""
    argv = train_argv(settings, dataset, seed, checkpoint, device)
    losses: dict[int, float] = {}
    epochs = None if resume is None else ResumableEpochs(resume, settings.epochs, checkpoint, losses,
                                                         {} if kept is None else kept)

    def epoch_end(model: nn.Module, epoch: int) -> None:
        if on_epoch_end is not None:
            on_epoch_end(model, epoch)
        if epochs is not None:
            epochs.save(epoch)

    modules = _modules(upstream, refiner)
    if on_epoch_end is not None or epochs is not None:
        modules = watching_epochs(modules or vendor.import_modules(upstream, ["modules"]).modules, epoch_end)
    with tqdm(total=settings.epochs, desc="epochs", unit="epoch", leave=False) as bar:
        output = ScriptOutput(echo=sys.stderr if echo else None, bar=bar)
        output.losses = losses
        trained = cswm.run_script(upstream, "train.py", argv, modules=modules, output=output,
                                  script_globals=None if epochs is None else {"range": epochs.range})
    if (on_epoch_end is not None or epochs is not None) and (epochs is None or epochs.done < settings.epochs):
        epoch_end(trained["model"], settings.epochs)
    return trained, losses


def evaluate(upstream: vendor.Upstream, dataset: Path, checkpoint: Path, steps: int, refiner: KindSettings | None,
             device: torch.device = torch.device("cpu"), echo: bool = False) -> dict:
    """Run eval.py on the checkpoint folder with ``--num-steps steps`` (its output appended
    to ``eval.txt`` there). Returns its globals (``hits_at``, ``rr_sum``, ``num_samples``,
    ``next_state_flat`` [N, K * D], ...), from which its numbers are read."""
    argv = ["--dataset", str(dataset), "--save-folder", str(checkpoint), "--num-steps", str(steps),
            *device_argv(device)]
    with open(checkpoint / "eval.txt", "a") as log:
        output = ScriptOutput(log=log, echo=sys.stderr if echo else None)
        return cswm.run_script(upstream, "eval.py", argv, modules=_modules(upstream, refiner), output=output)


def _modules(upstream: vendor.Upstream, refiner: KindSettings | None):
    """The upstream's ``modules`` for the scripts: None (their own) for the baseline."""
    if refiner is None:
        return None
    return adapter.install_on_construction(vendor.import_modules(upstream, ["modules"]).modules, refiner)


def ranking(upstream: vendor.Upstream, eval_set: Path, checkpoint: Path, refiner: KindSettings | None,
            device: torch.device = torch.device("cpu"), echo: bool = False, desc: str = "evaluation",
            prediction_steps: tuple[int, ...] = PREDICTION_STEPS) -> dict:
    """eval.py's numbers for the model in the folder ``checkpoint``: ``h1_<n>`` and
    ``mrr_<n>`` for n in ``prediction_steps``, ``samples`` (ranked eval samples) and
    ``spread`` (state_spread of the states of the 1-step evaluation). eval.py's globals
    (which hold the whole evaluation set) are dropped as soon as their numbers are read."""
    metrics = {}
    for steps in tqdm(prediction_steps, desc=f"{desc} (prediction steps)", unit="eval", leave=False):
        evaluated = evaluate(upstream, eval_set, checkpoint, steps, refiner, device, echo)
        samples = metrics["samples"] = evaluated["num_samples"]
        metrics[f"h1_{steps}"] = evaluated["hits_at"][1] / samples
        metrics[f"mrr_{steps}"] = float(evaluated["rr_sum"]) / samples
        if steps == 1:
            metrics["spread"] = state_spread(evaluated["next_state_flat"])
        del evaluated
    return metrics


def train_and_evaluate(upstream: vendor.Upstream, train_set: Path, eval_set: Path, checkpoint: Path,
                       settings: TrainSettings, seed: int, refiner: KindSettings | None,
                       device: torch.device = torch.device("cpu"), echo: bool = False,
                       eval_every: int | None = None, resume: RunCheckpoint | None = None) -> dict:
    """Metrics of one seed: ``ranking``'s for the model train.py saved (its best average
    epoch loss), ``train_loss`` (that loss) and ``curve``: per epoch ``{"epoch": e,
    "train_loss": ...}``, with ``ranking``'s numbers at every ``eval_every``-th epoch (None:
    none); for a refiner arm also ``steps_curve``: that model's 1-step H@1 and MRR with
    its refiner at 0, 1, r/2 and r steps (``runners.common.curves.steps_curve``).
    ``echo``: stream the scripts' output to the console too; ``resume``: the run's resume
    checkpoint (train.py goes on from its last saved epoch)."""
    evaluated_at: dict[int, dict] = {}

    def on_epoch_end(model: nn.Module, epoch: int) -> None:
        if epoch % eval_every == 0:
            evaluated_at[epoch] = snapshot_ranking(model, upstream, eval_set, checkpoint, refiner, device, echo, epoch)

    trained, losses = train(upstream, train_set, checkpoint, settings, seed, refiner, device, echo,
                            on_epoch_end if eval_every else None, resume, evaluated_at)
    metrics = {"train_loss": float(trained["best_loss"])}
    del trained
    metrics.update(ranking(upstream, eval_set, checkpoint, refiner, device, echo))
    if refiner is not None:
        at_r = {key: metrics[key] for key in ("h1_1", "mrr_1", "samples", "spread")}
        metrics["steps_curve"] = refiner_steps_curve(upstream, eval_set, checkpoint, refiner, device, echo,
                                                     at_r if refiner.schedule is None else None)
    metrics["curve"] = [{"epoch": epoch, "train_loss": loss, **evaluated_at.get(epoch, {})}
                        for epoch, loss in sorted(losses.items())]
    return metrics


def refiner_steps_curve(upstream: vendor.Upstream, eval_set: Path, checkpoint: Path, refiner: KindSettings,
                        device: torch.device = torch.device("cpu"), echo: bool = False,
                        at_r: dict | None = None) -> list[dict]:
    """The step-count curve of the model in the folder ``checkpoint``: eval.py's 1-step
    H@1 and MRR with its refiner at 0, 1, r/2 and r steps and no schedule
    (``runners.common.curves.steps_curve``; ``at_r``: the 1-step ``ranking`` at r steps,
    already measured)."""
    return steps_curve(lambda count: ranking(upstream, eval_set, checkpoint, replace(refiner, steps=count, schedule=None),
                                             device, echo, desc=f"refiner at {count} steps", prediction_steps=(1,)),
                       refiner.steps, at_r)


def snapshot_ranking(model: nn.Module, upstream: vendor.Upstream, eval_set: Path, checkpoint: Path,
                     refiner: KindSettings | None, device: torch.device, echo: bool, epoch: int) -> dict:
    """``ranking`` of ``model`` as it is now (during train.py's run on ``checkpoint``), from
    a copy of its weights and of train.py's metadata.pkl in ``<checkpoint>/curve``, with
    every random generator as it was (eval.py seeds them)."""
    folder = checkpoint / "curve"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(checkpoint / "metadata.pkl", folder / "metadata.pkl")
    torch.save(model.state_dict(), folder / "model.pt")
    with random_states.kept():
        return ranking(upstream, eval_set, folder, refiner, device, echo, desc=f"curve, epoch {epoch}")


def state_spread(states: torch.Tensor) -> float:
    """Root mean squared distance of the states [N, F] to their mean: 0 for an encoder that
    maps every observation to one point (which eval.py ranks first on every tie)."""
    return math.sqrt(float((states - states.mean(dim=0)).pow(2).sum(dim=1).mean()))
