"""Where the (arm, seed) runs of a command execute: ``inline`` (one after another in this
process, the default), ``local`` (submitit's local executor: separate processes, up to
``--jobs`` at once, spread over the visible GPUs) or ``slurm`` (submitit's SLURM executor:
one job per run, with the resources of the preset's ``launcher`` section or the flags).

A job is the runner's own command narrowed to one run: the same arguments plus ``--job
ARM:SEED`` and the preset, device and threads this command resolved. It finds the data
this command prepared and cached before submitting anything, trains its run as the inline
loop would (same seeding, same threads) and saves it to results.json, whose writers take
turns (``runners.common.results``). This command waits with one progress bar over the
jobs, names the log of each failed one, and cancels the running ones on Ctrl-C; finished
runs stay saved, so rerunning the command redoes only what is missing.
"""
import argparse
import contextlib
import importlib
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import submitit
import torch
from tqdm import tqdm

from patches.vendor import PROJECT_ROOT
from runners.common.cli import JobsFailed, UsageError
from runners.common.settings import frozen, with_overrides

LOCAL_TIMEOUT_MIN = 30 * 24 * 60  # submitit's local executor ends a job after timeout_min (its default: 2)
POLL_SECONDS = 1.0
SLURM_FLAGS = {"partition": "--partition", "time_min": "--time", "gpus_per_job": "--gpus-per-job",
               "cpus_per_job": "--cpus-per-job", "mem_gb": "--mem"}
SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch and starts each task with srun
CARRIED_ENVIRONMENT = ("PYTHONHASHSEED",)  # set by a runner for its upstream (clutrr): its jobs need it too


@dataclass(frozen=True)
class SlurmResources:
    """One SLURM job's resources: ``partition``, ``time_min`` (minutes), ``gpus_per_job``
    (0: a CPU job), ``cpus_per_job`` (also the run's torch threads) and ``mem_gb`` (None:
    the partition's default)."""

    partition: str
    time_min: int
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    mem_gb: int | None = None

    def __post_init__(self):
        if not isinstance(self.partition, str) or not self.partition:
            raise ValueError(f"partition must be a name, got {self.partition!r}")
        for name, least in (("time_min", 1), ("gpus_per_job", 0), ("cpus_per_job", 1)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {getattr(self, name)!r}")
        if self.mem_gb is not None and (not isinstance(self.mem_gb, int) or self.mem_gb < 1):
            raise ValueError(f"mem_gb must be an integer >= 1, got {self.mem_gb!r}")


@dataclass(frozen=True)
class Launch:
    """How a command's runs execute. ``launcher``: inline, local or slurm; ``jobs``: at
    most this many at once (local: always set; slurm: None = no limit); ``gpus``: the GPU
    indices local jobs are spread over, ``jobs_per_gpu`` on each (empty: CPU jobs);
    ``slurm``: the resources of a SLURM job; ``job``: in a job's own process, the (arm,
    seed) it runs."""

    launcher: str = "inline"
    jobs: int | None = None
    gpus: tuple[int, ...] = ()
    jobs_per_gpu: int = 1
    slurm: SlurmResources | None = None
    job: tuple[str, int] | None = None


def resolve_launch(args: argparse.Namespace, section: Mapping[str, Any], device: torch.device,
                   preset_threads: int | None, source: str, cores: int | None = None,
                   gpu_count: int | None = None) -> tuple[Launch, int | None]:
    """The Launch of ``args`` and the torch threads of each run. ``section``: the preset's
    ``launcher`` section (SLURM resources; ``source`` names it in errors); ``device``: the
    runs' device; ``cores``, ``gpu_count``: this machine's (default: os.cpu_count(), the
    visible GPUs). Threads: --threads, else for inline the preset's, for local min(the
    preset's, cores // jobs at once), for slurm --cpus-per-job."""
    cores = cores or os.cpu_count() or 1
    if args.job is not None:
        return Launch(job=args.job), args.threads
    slurm_flags = {name: getattr(args, name) for name in SLURM_FLAGS}
    given = [SLURM_FLAGS[name] for name, value in slurm_flags.items() if value is not None]
    if args.launcher != "slurm" and given:
        raise UsageError(f"{', '.join(given)} set SLURM jobs: add --launcher slurm")
    if args.launcher != "local" and args.jobs_per_gpu is not None:
        raise UsageError("--jobs-per-gpu spreads local jobs over GPUs: add --launcher local")
    if args.launcher == "inline":
        if args.jobs is not None:
            raise UsageError("--jobs sets how many runs execute at once: add --launcher local or slurm")
        return Launch(), args.threads or preset_threads
    if args.launcher == "slurm":
        missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
        if missing and not args.dry_run:
            raise UsageError(f"--launcher slurm: {' and '.join(missing)} not found: run it where SLURM is "
                             "installed (a cluster's login node)")
        resources = frozen(SlurmResources, with_overrides(dict(section), slurm_flags),
                           f"{source} launcher section (with the flags)")
        return Launch("slurm", jobs=args.jobs, slurm=resources), args.threads or resources.cpus_per_job
    if device.type != "cuda":
        gpus = ()
    elif device.index is not None:
        gpus = (device.index,)
    else:
        gpus = tuple(range(torch.cuda.device_count() if gpu_count is None else gpu_count))
    jobs_per_gpu = args.jobs_per_gpu or 1
    capacity = len(gpus) * jobs_per_gpu if gpus else cores
    jobs = min(args.jobs or capacity, capacity) if gpus else (args.jobs or capacity)
    threads = args.threads or min(preset_threads or cores, max(1, cores // jobs))
    return Launch("local", jobs=jobs, gpus=gpus, jobs_per_gpu=jobs_per_gpu), threads


def run_job(runner: str, argv: Sequence[str]) -> None:
    """A job's process: ``python runners/<runner>.py ARGV``, which names its one run."""
    importlib.import_module(f"runners.{runner}").main(list(argv))


@dataclass(frozen=True)
class Job:
    """One pending run and the arguments of the command that runs it alone."""

    arm: str
    seed: int
    argv: tuple[str, ...]


def jobs_of(pending: Sequence[tuple[int, str]], argv: Sequence[str], preset: str, device: str,
            threads: int | None) -> list[Job]:
    """The Job of each pending (seed, arm): ``argv`` (the launching command's arguments)
    narrowed to the run, with the ``preset``, ``device`` and ``threads`` it resolved."""
    fixed = ["--preset", preset, "--device", device] + ([] if threads is None else ["--threads", str(threads)])
    return [Job(arm, seed, (*argv, *fixed, "--job", f"{arm}:{seed}")) for seed, arm in pending]


def job_environment() -> dict[str, str]:
    """What a job's environment needs beyond its submitter's: the project importable from
    any folder (PYTHONPATH), and what a runner set for its upstream (CARRIED_ENVIRONMENT)."""
    path = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {"PYTHONPATH": path, **{name: os.environ[name] for name in CARRIED_ENVIRONMENT if name in os.environ}}


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """os.environ with ``variables`` set, for the block (local jobs inherit it)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def slurm_executor(folder: Path, resources: SlurmResources, jobs: int | None, runner: str) -> submitit.SlurmExecutor:
    """submitit's SLURM executor writing its scripts and logs under ``folder``."""
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    parameters = dict(job_name=runner, partition=resources.partition, time=resources.time_min,
                      cpus_per_task=resources.cpus_per_job,
                      setup=[f"export {name}={shlex.quote(value)}" for name, value in job_environment().items()])
    if resources.gpus_per_job:
        parameters["gpus_per_node"] = resources.gpus_per_job
    if resources.mem_gb is not None:
        parameters["mem"] = f"{resources.mem_gb}GB"
    if jobs is not None:
        parameters["array_parallelism"] = jobs
    executor.update_parameters(**parameters)
    return executor


def submit_array(executor: submitit.SlurmExecutor, jobs: Sequence[Job], runner: str) -> list[submitit.Job]:
    """Submit ``jobs`` as one SLURM job array (sbatch once); their submitit handles."""
    with executor.batch():
        handles = [executor.submit(run_job, runner, list(job.argv)) for job in jobs]
    return handles


def local_executor(folder: Path) -> submitit.LocalExecutor:
    """submitit's local executor writing its logs under ``folder`` (its jobs inherit this
    process's environment: submit them within ``environment(job_environment())``)."""
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
    return executor


class JobBoard:
    """The jobs of one command: submitted ones by state, and the progress bar over them."""

    def __init__(self, jobs: Sequence[Job], seconds_left: Callable[[list[str]], float | None]):
        self.waiting = list(jobs)
        self.running: list[tuple[Job, submitit.Job, int | None]] = []  # with the GPU slot it holds
        self.finished: list[Job] = []
        self.failed: list[tuple[Job, Path]] = []
        self.seconds_left = seconds_left
        self.bar = tqdm(total=len(jobs), desc="jobs", unit="job",
                        bar_format="{desc}: {n}/{total} |{bar}| {elapsed} elapsed{postfix}")

    def show(self, at_once: int) -> None:
        pending = [job.arm for job in self.waiting] + [job.arm for job, _, _ in self.running]
        seconds = self.seconds_left(pending)
        eta = "" if seconds is None else f"; about {seconds / max(1, at_once) / 60:.0f} min left"
        self.bar.n = len(self.finished)
        self.bar.set_postfix_str(f"running {len(self.running)}, waiting {len(self.waiting)}, "
                                 f"failed {len(self.failed)}{eta}")

    def settle(self, is_saved: Callable[[Job], bool]) -> list[int | None]:
        """Move the jobs that ended to finished (their run is saved) or failed; returns the
        GPU slots they freed."""
        freed, still = [], []
        for job, handle, slot in self.running:
            if handle.done():
                if is_saved(job):
                    self.finished.append(job)
                else:
                    self.failed.append((job, handle.paths.stderr))
                    tqdm.write(f"failed: {job.arm}, seed {job.seed}; its log: {handle.paths.stderr}", file=sys.stderr)
                freed.append(slot)
            else:
                still.append((job, handle, slot))
        self.running = still
        return freed

    def cancel_running(self) -> None:
        for _, handle, _ in self.running:
            handle.cancel(check=False)
        tqdm.write(f"cancelled {len(self.running)} running job(s)", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def slots(launch: Launch) -> list[int | None]:
    """The places of a local launch's jobs at once: GPU indices, each GPU's first job
    before any GPU's second; None for each CPU job."""
    if not launch.gpus:
        return [None] * launch.jobs
    return [gpu for _ in range(launch.jobs_per_gpu) for gpu in launch.gpus][:launch.jobs]


def execute(jobs: Sequence[Job], launch: Launch, folder: Path, runner: str, is_saved: Callable[[Job], bool],
            seconds_left: Callable[[list[str]], float | None]) -> None:
    """Run ``jobs`` through ``launch`` (local or slurm), submitit writing under ``folder``,
    until each has ended; ``is_saved(job)``: whether its run is in results.json (rereads
    it). JobsFailed when some runs are missing afterwards; Ctrl-C cancels the running jobs."""
    board = JobBoard(jobs, seconds_left)
    at_once = launch.jobs or len(jobs)
    try:
        if launch.launcher == "slurm":
            handles = submit_array(slurm_executor(folder, launch.slurm, launch.jobs, runner), board.waiting, runner)
            board.running = [(job, handle, None) for job, handle in zip(board.waiting, handles)]
            board.waiting = []
            free: list[int | None] = []
        else:
            executor = local_executor(folder)
            free = slots(launch)
        while board.waiting or board.running:
            while board.waiting and free:
                slot = free.pop(0)
                executor.update_parameters(gpus_per_node=0 if slot is None else 1,
                                           visible_gpus=() if slot is None else (slot,))
                job = board.waiting.pop(0)
                with environment(job_environment()):
                    board.running.append((job, executor.submit(run_job, runner, list(job.argv)), slot))
            board.show(at_once)
            time.sleep(POLL_SECONDS)
            free += board.settle(is_saved)
        board.show(at_once)
    except KeyboardInterrupt:
        board.cancel_running()
        raise
    finally:
        board.close()
    if board.failed:
        raise JobsFailed(f"{len(board.failed)} of {len(jobs)} job(s) failed (logs named above); the finished runs "
                         "are saved: run the same command again to redo the missing ones")


def job_device(launch: Launch, device: torch.device) -> str:
    """The --device of a job: "cuda" for a local GPU job (it sees only its GPU, through
    CUDA_VISIBLE_DEVICES), else the runs' ``device`` (a SLURM job's: cuda or cpu)."""
    return "cuda" if launch.gpus else str(device)
