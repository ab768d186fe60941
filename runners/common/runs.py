"""Run every (seed, arm) of an experiment that is not finished yet, saving each at once:
inline, or as jobs of a launcher (``runners.common.launch``)."""
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from tqdm import tqdm

from runners.common.checkpoints import RunCheckpoint, checkpoint_path, code_version, discard, run_lock
from runners.common.errors import UsageError
from runners.common.device import device_name, use_device
from runners.common.invocation import Invocation
from runners.common.launch import Job, execute, job_device, jobs_of
from runners.common.results import ResultStore
from runners.common.seeding import counting_nondeterminism, seed_everything
from srn import capture, finite_checks


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the settings that define its runs and the function that
    trains and evaluates one seed (called after seeding, with the run's resume
    checkpoint: ``runners.common.checkpoints``) and returns its metrics, with its learning
    curve under ``curve`` (a list of per-epoch dicts; saved beside the metrics)."""

    settings: dict
    run: Callable[[int, RunCheckpoint], dict]


def run_checkpoint(store: ResultStore, name: str, arm: Arm, seed: int, invocation: Invocation) -> RunCheckpoint:
    """The resume checkpoint of a run (after seeding: its environment names the threads),
    named by the run's identity and fingerprinted by its environment and the project's code."""
    fingerprint = {"code": code_version(), "environment": run_environment(invocation.device, invocation.capture)}
    return RunCheckpoint(checkpoint_path(store.directory, name, arm.settings, seed), f"{name}, seed {seed}", fingerprint,
                         invocation.checkpoint_minutes)


def seconds_left(pending: Sequence[str], costs: Mapping[str, list[float]]) -> float | None:
    """Expected seconds of the ``pending`` runs (their arm names), each arm at the mean of its
    measured ``costs`` (seconds of its finished runs); an arm not measured yet costs the mean
    of the measured ones. None while nothing is measured."""
    measured = {arm: sum(seconds) / len(seconds) for arm, seconds in costs.items() if seconds}
    if not measured:
        return None
    fallback = sum(measured.values()) / len(measured)
    return sum(measured.get(arm, fallback) for arm in pending)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA after the first run"
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return f"ETA {hours}:{minute:02d}:{second:02d}" if hours else f"ETA {minute}:{second:02d}"


def run_environment(device: torch.device, captured: bool = False) -> dict:
    """What, besides its settings and seed, changes a run's numbers: torch's threads, the
    device (the GPU's model, or the CPU's with its vector instructions), the determinism
    settings, torch's version (read in the run's own process, after seeding) and, for a
    run that captured its refiners' loops (--compile), how (``capture``; absent: eager)."""
    environment = {"threads": torch.get_num_threads(), "device": device_name(device),
                   "deterministic": torch.are_deterministic_algorithms_enabled(), "torch": torch.__version__}
    return environment | ({"capture": capture.description(device)} if captured else {})


def run_one(store: ResultStore, name: str, arm: Arm, seed: int, invocation: Invocation) -> float | None:
    """Seed, train and evaluate one run on the invocation's device, resuming from its
    checkpoint when it has one, and save it; returns its wall seconds (those before a
    resume included), or None when a live process that held the run meanwhile finished
    it. Only a run touches CUDA (its device becomes torch's current one here), never a
    command that only launches jobs. The checkpoint goes once the result is saved."""
    use_device(invocation.device)
    with run_lock(checkpoint_path(store.directory, name, arm.settings, seed), f"{name}, seed {seed}"):
        if store.refresh().get(name, arm.settings, seed) is not None:
            return None
        seed_everything(seed, invocation.threads)
        checkpoint = run_checkpoint(store, name, arm, seed, invocation)
        start = time.perf_counter()
        with counting_nondeterminism() as nondeterministic, capture.capturing(
                invocation.device if invocation.capture else None):
            checkpoint.tally = lambda: {"seconds": time.perf_counter() - start,
                                        "nondeterministic_kernels": len(nondeterministic)}
            metrics = arm.run(seed, checkpoint)
        finite_checks.raise_pending()  # the refiners' last checks, before the result is kept
        seconds = time.perf_counter() - start + checkpoint.carried.get("seconds", 0.0)
        kernels = len(nondeterministic) + checkpoint.carried.get("nondeterministic_kernels", 0)
        curve = metrics.pop("curve", [])
        store.put(name, arm.settings, seed, metrics, seconds, kernels,
                  run_environment(invocation.device, invocation.capture), curve)
        checkpoint.remove()
    tqdm.write(f"{name}, seed {seed}: {seconds:.0f} s, {kernels} call(s) of a kernel without a "
               "deterministic implementation")
    return seconds


def run_arms(store: ResultStore, arms: Mapping[str, Arm], invocation: Invocation) -> dict[str, list[dict]] | None:
    """Run the missing (seed, arm) pairs of ``invocation.seeds`` where ``invocation.launch``
    says; returns arm -> metrics per finished seed, in seed order. Inline, seed by seed, so
    that an interrupted experiment still has comparable arms, with a progress bar whose ETA
    weighs each arm by its measured cost (runs of the same arm and settings in
    results.json, then this command's); local or slurm: one job per run. In a job's own
    process (``launch.job``), only that run, and None: the launching command reports."""
    if invocation.launch.job is not None:
        name, seed = invocation.launch.job
        if name not in arms or seed not in invocation.seeds:
            raise UsageError(f"--job {name}:{seed}: no such run (arms: {', '.join(arms)}; seeds "
                             f"{invocation.seeds.start}..{invocation.seeds.stop - 1})")
        if store.get(name, arms[name].settings, seed) is None:
            run_one(store, name, arms[name], seed, invocation)
        return None
    pending = [(seed, name) for seed in invocation.seeds for name, arm in arms.items()
               if store.get(name, arm.settings, seed) is None]
    done = len(invocation.seeds) * len(arms) - len(pending)
    for seed in invocation.seeds:  # a run that died between saving its result and removing its checkpoint
        for name, arm in arms.items():
            if (seed, name) not in pending:
                discard(checkpoint_path(store.directory, name, arm.settings, seed))
    if done:
        print(f"reusing {done} finished run(s) from {store.path}")
    costs = {name: store.seconds(name, arm.settings) for name, arm in arms.items()}
    if pending and invocation.launch.launcher != "inline":
        def is_saved(job: Job) -> bool:
            return store.refresh().get(job.arm, arms[job.arm].settings, job.seed) is not None

        jobs = jobs_of(pending, invocation.argv, invocation.preset, job_device(invocation.launch, invocation.device),
                       invocation.threads)
        print(f"{len(jobs)} job(s), {invocation.launch.launcher} launcher, at most "
              f"{invocation.launch.jobs or len(jobs)} at once, {invocation.threads or 'all'} thread(s) each; "
              f"logs in {store.directory / 'jobs'}")
        execute(jobs, invocation.launch, store.directory / "jobs", invocation.runner, is_saved,
                lambda names: seconds_left(names, costs))
        store.refresh()
        pending = []
    with tqdm(total=len(pending), desc="runs", unit="run", disable=not pending,
              bar_format="{desc}: {n}/{total} |{bar}| {elapsed} elapsed{postfix}") as bar:
        for index, (seed, name) in enumerate(pending):
            bar.set_postfix_str(f"{format_eta(seconds_left([n for _, n in pending[index:]], costs))}; "
                                f"now {name}, seed {seed}")
            seconds = run_one(store, name, arms[name], seed, invocation)
            if seconds is not None:
                costs[name].append(seconds)
            bar.update()
    return store.table({name: arm.settings for name, arm in arms.items()}, invocation.seeds)
