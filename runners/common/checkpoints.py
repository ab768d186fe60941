"""A run's resume checkpoint: everything a run that dies needs to go on from its last
saved epoch and end with the numbers of a run that never died.

One pending (arm, seed) run has one checkpoint, named by its results identity, at
``<results folder>/resume/<arm>-<settings key>-seed<seed>.ckpt``. The runner gives the
state of its loop at an epoch end (models, optimizers, schedulers, its curve so far, the
upstream's own loop state); this module adds every random generator
(``runners.common.random_states``) and writes it:

* at an epoch end once ``minutes`` have passed since the last write (0: every epoch), at
  the last epoch, and at the end of the epoch in progress when the launcher's preemption
  signal comes and that end is expected within ``DEFER_SECONDS`` (``defer_preemption``);
  when it writes never changes the numbers;
* atomically and durably (a temporary file, fsync, rename, fsync of the folder), so a kill
  mid-write leaves the checkpoint before; the one before that is kept as ``.previous``;
* with the sha256 of its payload in its header: a damaged file is refused and the run
  falls back to the previous checkpoint, or to a fresh start, and says which.

A checkpoint records its fingerprint (its name already says which run it is): the run's
environment (threads,
device, determinism, torch, capture: ``runners.common.runs.run_environment``) and the
project's code (``code_version``). One made under another fingerprint is not resumed (a
run's numbers never mix environments or code): the run starts over and says why.
``run_lock`` keeps a second process from training a run that a live one trains.
"""
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from patches.vendor import PROJECT_ROOT
from runners.common import random_states
from runners.common.atomic import replaced_atomically
from runners.common.results import settings_key

MAGIC = b"srn-refiners run checkpoint 1\n"
PACKAGES = ("adapters", "declared", "patches", "refiners", "runners", "srn")  # the code whose change makes a checkpoint stale
DEFAULT_MINUTES = 10.0
DEFER_SECONDS = 45.0  # half of SLURM's 90-s warning (submitit's signal_delay_s): an epoch end that close is waited for


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 (first 16 hex digits) of the project's Python files that a run executes (the
    upstreams are pinned and checked by ``patches.vendor``)."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def checkpoint_path(directory: Path, name: str, settings: dict, seed: int) -> Path:
    """Where the resume checkpoint of a run of the results folder ``directory`` is: named
    by the run's results identity (arm, settings, seed)."""
    return Path(directory) / "resume" / f"{name}-{settings_key(settings)}-seed{seed}.ckpt"


def previous_of(path: Path) -> Path:
    """Where the checkpoint before the one at ``path`` is kept."""
    return path.with_name(path.name + ".previous")


def resume_point(path: Path) -> str | None:
    """Where a run resumes from the checkpoint at ``path`` (or its previous one), read from
    its header alone (for --dry-run: the run resumes there if its fingerprint still
    matches), or None when there is none."""
    for candidate in (path, previous_of(path)):
        with contextlib.suppress(Damaged, KeyError):
            if candidate.exists():
                return where_it_resumes(read_header(candidate))
    return None


def where_it_resumes(header: dict) -> str:
    """"at epoch 7 of 50", or "after its last epoch (50): evaluating", for a checkpoint's header."""
    if header["epoch"] < header["epochs"]:
        return f"at epoch {header['epoch'] + 1} of {header['epochs']}"
    return f"after its last epoch ({header['epochs']}): evaluating"


@dataclass(frozen=True)
class Resumed:
    """What a run goes on from: the last epoch it finished (1-based) and the state the
    runner saved then."""

    epoch: int
    state: dict


class Damaged(Exception):
    """A checkpoint file that cannot be trusted (its reason is the message)."""


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in one step (temporary file, fsync, rename) and fsync the
    folder so that the rename survives a power loss."""
    with replaced_atomically(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_header(path: Path) -> dict:
    """The header of the checkpoint at ``path`` (epoch, epochs, fingerprint, sha256 of the
    payload); Damaged when it is not one."""
    try:
        with open(path, "rb") as handle:
            if handle.readline() != MAGIC:
                raise Damaged("not a run checkpoint")
            return json.loads(handle.readline())
    except (OSError, ValueError) as error:
        raise Damaged(f"unreadable header ({error})") from None


def read_payload(path: Path) -> tuple[dict, dict]:
    """(header, payload) of the checkpoint at ``path``; Damaged unless its payload has the
    sha256 its header names."""
    header = read_header(path)
    with open(path, "rb") as handle:
        handle.readline(), handle.readline()
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise Damaged("checksum mismatch")
    return header, torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def differences(saved: dict, now: dict) -> str:
    """What differs between two fingerprints, for one line: "threads 2, now 4; the code"."""
    said = []
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) == now.get(key):
            continue
        if key == "code":
            said.append("the code changed")
        elif isinstance(saved.get(key), dict) and isinstance(now.get(key), dict):
            said.append(differences(saved[key], now[key]))
        else:
            said.append(f"{key} {saved.get(key)}, now {now.get(key)}")
    return "; ".join(said)


_training: "RunCheckpoint | None" = None  # the run this process trains now (between resume and its last epoch)


class RunCheckpoint:
    """The resume checkpoint of one (arm, seed) run. ``label``: "srn, seed 0" in messages;
    ``fingerprint``: what must match for a saved checkpoint to be resumed; ``minutes``:
    the least time between two writes (0: every epoch end). ``tally()``: counts of this
    process's part of the run (its seconds, ...), saved added to ``carried``, the counts of
    the processes before it (read by ``resume``)."""

    def __init__(self, path: Path, label: str, fingerprint: dict, minutes: float = DEFAULT_MINUTES):
        self.path = Path(path)
        self.previous = previous_of(self.path)
        self.label, self.fingerprint, self.minutes = label, fingerprint, minutes
        self.last_write = self.epoch_began = time.monotonic()
        self.epoch_seconds: float | None = None  # the last epoch's, once one has ended in this process
        self.preempted: Callable[[], None] | None = None  # the launcher's deferred handler (defer_preemption)
        self.tally: Callable[[], dict[str, float]] = dict
        self.carried: dict[str, float] = {}
        self.console = sys.stdout  # messages go here even where an upstream script's output is redirected

    def say(self, message: str) -> None:
        tqdm.write(f"{self.label}: {message}", file=self.console)

    def resume(self) -> Resumed | None:
        """Call where a run's epoch loop begins. The state of the newest checkpoint that is
        sound and has this run's fingerprint, with every random generator set as it was
        then (said once: "srn, seed 0: resuming at epoch 7 of 50"); None (a fresh start,
        said with the reason when a checkpoint was there) otherwise. From here until the
        last epoch's write this is the run the preemption signal waits for (not when it
        resumes after its last epoch)."""
        global _training
        _training = self
        self.last_write = self.epoch_began = time.monotonic()
        for partial in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a write killed midway
            partial.unlink()
        for path, which in ((self.path, "its checkpoint"), (self.previous, "the previous checkpoint")):
            if not path.exists():
                continue
            try:
                header, payload = read_payload(path)
            except Damaged as error:
                self.say(f"{which} {path} is damaged ({error}): "
                         f"{'trying the previous one' if path == self.path else 'starting over'}")
                continue
            if header["fingerprint"] != self.fingerprint:
                self.say(f"starting over: {which} (epoch {header['epoch']}) was made under another environment or "
                         f"code ({differences(header['fingerprint'], self.fingerprint)})")
                return None
            self.say(f"resuming {where_it_resumes(header)}"
                     + ("" if path == self.path else " (from the previous checkpoint)"))
            if header["epoch"] == header["epochs"]:
                _training = None  # no epoch end is left to wait for
            random_states.restore(payload["random"])
            self.carried = header.get("tally", {})
            return Resumed(header["epoch"], payload["state"])
        return None

    def epoch_end(self, epoch: int, epochs: int, state: Callable[[], dict]) -> None:
        """After epoch ``epoch`` (1-based) of ``epochs``: write ``state()`` (with every
        random generator's state now) if a write is due; then, if the launcher's preemption
        signal came during the epoch, hand over to its handler (which requeues the job
        and ends this process)."""
        global _training
        self.epoch_seconds = time.monotonic() - self.epoch_began
        if epoch == epochs or self.minutes == 0 or self.preempted is not None \
                or time.monotonic() - self.last_write >= self.minutes * 60:
            self.write(epoch, epochs, state())
        self.epoch_began = time.monotonic()
        if epoch == epochs and _training is self:
            _training = None
        if self.preempted is not None:
            self.say(f"preempted: checkpoint of epoch {epoch} written, handing over to the launcher")
            self.preempted()

    def write(self, epoch: int, epochs: int, state: dict) -> None:
        """Save ``state`` as the checkpoint of epoch ``epoch`` of ``epochs``; the one it
        replaces becomes ``.previous``."""
        buffer = io.BytesIO()
        torch.save({"random": random_states.captured(), "state": state}, buffer)
        payload = buffer.getvalue()
        tally = {key: self.carried.get(key, 0) + value for key, value in self.tally().items()}
        header = {"epoch": epoch, "epochs": epochs, "fingerprint": self.fingerprint, "tally": tally,
                  "sha256": hashlib.sha256(payload).hexdigest()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            os.replace(self.path, self.previous)
        write_durably(self.path, MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        self.last_write = time.monotonic()

    def ends_epoch_within(self, seconds: float) -> bool:
        """Whether the epoch in progress is expected to end within ``seconds``, if it lasts
        as the last one did (False before an epoch has ended in this process)."""
        return self.epoch_seconds is not None and \
            self.epoch_began + self.epoch_seconds - time.monotonic() <= seconds

    def remove(self) -> None:
        """Delete the checkpoint (its run's result is saved)."""
        global _training
        if _training is self:
            _training = None
        discard(self.path)


def discard(path: Path) -> None:
    """Delete the checkpoint at ``path`` and its previous one (what a run whose result is
    saved leaves when it dies before removing them)."""
    for stale in (path, previous_of(path)):
        stale.unlink(missing_ok=True)


def defer_preemption(signum: int = signal.SIGUSR2) -> None:
    """In a job's process: the handler installed for ``signum`` (submitit's, for SLURM's
    warning before a time limit or a preemption: checkpoint the job, requeue it, exit) runs
    at the end of the epoch in progress, after that epoch's checkpoint, when that end is
    expected within ``DEFER_SECONDS``; at once otherwise (an epoch too long to wait for,
    or no run between its first and its last epoch: the requeued job resumes from the
    last checkpoint written)."""
    launcher_handler = signal.getsignal(signum)
    if not callable(launcher_handler):
        return

    def handler(number, frame):
        if _training is None or not _training.ends_epoch_within(DEFER_SECONDS):
            launcher_handler(number, frame)
        else:  # nothing printed here: the signal may have come in the middle of a write to the console
            _training.preempted = lambda: launcher_handler(number, frame)

    signal.signal(signum, handler)


@contextlib.contextmanager
def run_lock(path: Path, label: str) -> Iterator[None]:
    """Within the block this process alone trains the run whose checkpoint is ``path``: an
    exclusive ``flock`` on ``.<name>.lock`` beside it, waited for (and said) while a live process
    holds it. The lock goes with the process that holds it, so a killed one leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            tqdm.write(f"{label}: another live process is training it; waiting for it to end")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
