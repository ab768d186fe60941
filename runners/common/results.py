"""Finished runs on disk: results.json (every finished seed, saved at once) and results.md.

Every write goes to a temporary file that replaces the old one (``runners.common.atomic``),
so an interrupted run loses at most the run in progress and never a finished one; a rerun
skips what is done. Writers in several processes (one per job) take turns: each holds an
exclusive lock on ``.results.json.lock`` while it reads the file, adds its run and
replaces it, so no finished run is lost whatever the interleaving. The lock is the
operating system's (``flock``): it goes with the process that holds it, so a writer that
dies, even mid-write, leaves neither a stale lock nor a partial file.
A run is identified by its arm, the settings that define it, and its seed: a run with
other settings is a different run, and an arm shared by two commands (the baseline of
``cswm.py`` with and without ``--srn``) is trained once. Each run keeps the environment it
was made in (threads, device with the GPU's or CPU's model, determinism settings, torch version), and its learning
curve (``curve``: one dict per epoch, ``{"epoch": e, "train_loss": ..., ...}``); a table
never mixes runs of different environments (``ResultStore.table``; a run saved before
environments named the CPU's model is taken as made on the CPU the others name).
"""
import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Iterator, Mapping

from runners.common.atomic import atomic_write_text
from runners.common.errors import UsageError

FORMAT = 1


def writable_folder(directory: Path, what: str, option: str) -> Path:
    """``directory``, created if missing; UsageError naming the ``option`` to change when
    it cannot be created or written (``what``: "results", "data", ...)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the {what} folder {directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise UsageError(f"the {what} folder {directory} is not writable: pass another {option}")
    return directory


def settings_key(settings: dict) -> str:
    """A short fingerprint of a run's settings (order of keys does not matter)."""
    canonical = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


UNNAMED_CPU = "CPU"  # a run's device before environments named the CPU's model


def comparable_environments(environments: list[dict | None], path: Path) -> None:
    """UsageError unless the runs of one table were made under one environment. A run
    saved before environments named the CPU's model (device "CPU") counts as made on the
    one CPU the other runs name, when everything else agrees: that model is printed as
    taken for it."""
    described = {json.dumps(environment, sort_keys=True) for environment in environments}
    named = {text for text in described if json.loads(text) is None or json.loads(text).get("device") != UNNAMED_CPU}

    def unnamed(text: str) -> str:
        environment = json.loads(text)
        if environment and environment.get("device", "").startswith(f"{UNNAMED_CPU}: "):
            environment = {**environment, "device": UNNAMED_CPU}
        return json.dumps(environment, sort_keys=True)

    if len(described) > 1 and not (len(named) == 1 and len({unnamed(text) for text in described}) == 1):
        raise UsageError(f"{path} mixes runs made under different environments ({' / '.join(sorted(described))}): "
                         "their numbers are not comparable; keep them apart with another --out")
    if len(described) > 1:
        print(f"runs saved before their environment named the CPU (device \"{UNNAMED_CPU}\") are taken as made on "
              f"the {json.loads(next(iter(named)))['device']} of the other runs")


class ResultStore:
    """The finished runs of one experiment folder."""

    def __init__(self, directory: Path, create: bool = True):
        """``create=False`` (--dry-run): read what is there, create and write nothing."""
        self.directory = writable_folder(Path(directory), "results", "--out") if create else Path(directory)
        self.path = self.directory / "results.json"
        self.runs = self._load()

    def _load(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            content = json.loads(self.path.read_text())
            if content["format"] != FORMAT or not isinstance(content["runs"], dict):
                raise ValueError("unknown format")
            return content["runs"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"{self.path} is not a results file this version can read ({error}): "
                "move it aside or pass another --out"
            ) from None

    @staticmethod
    def _key(arm: str, settings: dict, seed: int) -> str:
        return f"{arm}/{settings_key(settings)}/seed{seed}"

    def refresh(self) -> "ResultStore":
        """Reread results.json (runs other processes saved meanwhile); returns self."""
        self.runs = self._load()
        return self

    def record(self, arm: str, settings: dict, seed: int) -> dict | None:
        """The whole record of a finished run (its metrics, seconds, environment, curve, ...), or None."""
        return self.runs.get(self._key(arm, settings, seed))

    def get(self, arm: str, settings: dict, seed: int) -> dict | None:
        """The metrics of a finished run, or None."""
        run = self.record(arm, settings, seed)
        return None if run is None else run["metrics"]

    def put(self, arm: str, settings: dict, seed: int, metrics: dict, seconds: float,
            nondeterministic_kernels: int = 0, environment: dict | None = None, curve: list[dict] | None = None) -> None:
        """Record a finished run and save results.json at once, with the runs other
        processes saved meanwhile (which this store then sees too). ``nondeterministic_kernels``:
        the run's calls of kernels without a deterministic implementation; ``environment``:
        what besides its settings changes its numbers (threads, device, determinism, torch);
        ``curve``: its learning curve, one dict per epoch."""
        run = {
            "arm": arm,
            "seed": seed,
            "settings": json.loads(json.dumps(settings, default=str)),
            "metrics": metrics,
            "seconds": round(seconds, 1),
            "nondeterministic_kernels": nondeterministic_kernels,
            "environment": environment,
            "curve": curve or [],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        with self._locked():
            self._save({**self._load(), self._key(arm, settings, seed): run})

    def amend(self, arm: str, settings: dict, seed: int, metrics: dict) -> None:
        """Add ``metrics`` to those of a finished run (what was measured on it after it was
        saved, e.g. a step-count curve) and save results.json at once, with the runs other
        processes saved meanwhile."""
        key = self._key(arm, settings, seed)
        with self._locked():
            runs = self._load()
            self._save({**runs, key: {**runs[key], "metrics": {**runs[key]["metrics"], **metrics}}})

    def _save(self, runs: dict) -> None:
        """Replace results.json with ``runs`` (holding the lock)."""
        self.runs = runs
        atomic_write_text(self.path, json.dumps({"format": FORMAT, "runs": self.runs}, indent=1, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Within the block this process alone writes results.json."""
        with open(self.directory / f".{self.path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def seconds(self, arm: str, settings: dict) -> list[float]:
        """The wall seconds of every finished run of ``arm`` with ``settings``, any seed."""
        key = settings_key(settings)
        return [run["seconds"] for name, run in self.runs.items() if name.startswith(f"{arm}/{key}/")]

    def finished(self, arm: str, settings: dict, seeds: range) -> list[dict]:
        """Metrics of the finished runs of ``arm`` with ``settings`` among ``seeds``, in seed order."""
        return [m for m in (self.get(arm, settings, seed) for seed in seeds) if m is not None]

    def curve(self, arm: str, settings: dict, seed: int) -> list[dict] | None:
        """The learning curve of a finished run (empty for a run saved before curves were
        kept), or None."""
        run = self.runs.get(self._key(arm, settings, seed))
        return None if run is None else run.get("curve", [])

    def curves(self, arm: str, settings: dict, seeds: range) -> list[list[dict]]:
        """The learning curves of the finished runs of ``arm`` with ``settings`` among
        ``seeds``, in seed order."""
        return [curve for curve in (self.curve(arm, settings, seed) for seed in seeds) if curve is not None]

    def table(self, arms: Mapping[str, dict], seeds: range) -> dict[str, list[dict]]:
        """Metrics of the finished runs of each arm (name -> its settings) among ``seeds``, in
        seed order, for one table: UsageError if they were made under different
        environments (threads, device and its model, determinism settings, torch version), whose numbers
        are not comparable."""
        return self.named_table({arm: (arm, settings) for arm, settings in arms.items()}, seeds)

    def named_table(self, arms: Mapping[str, tuple[str, dict]], seeds: range) -> dict[str, list[dict]]:
        """``table`` of arms under names of their own (name -> (arm, settings)): several
        identities of one arm side by side."""
        keys = [self._key(arm, settings, seed) for arm, settings in arms.values() for seed in seeds]
        comparable_environments([self.runs[key].get("environment") for key in keys if key in self.runs], self.path)
        return {name: self.finished(arm, settings, seeds) for name, (arm, settings) in arms.items()}

    def write_markdown(self, text: str, name: str = "results.md") -> Path:
        """Save the experiment's tables as results.md (or another ``name`` in the folder)."""
        path = self.directory / name
        atomic_write_text(path, text)
        return path
