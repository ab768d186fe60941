"""Where the (arm, seed) runs of a command execute: ``inline`` (one after another in this
process, the default), ``local`` (submitit's local executor: separate processes, up to
``--jobs`` at once, spread over the visible GPUs) or ``slurm`` (submitit's SLURM executor:
one job per run, with the resources of the preset's ``launcher`` section or the flags).

A job is the runner's own command narrowed to one run: the same arguments plus ``--job
ARM:SEED`` and the preset, device and threads this command resolved. It finds the data
this command prepared and cached before submitting anything, trains its run as the inline
loop would (same seeding, same threads) and saves it to results.json, whose writers take
turns (``runners.common.results``). This command waits with one progress bar over the
jobs, names the log of each failed one, and cancels the running ones on Ctrl-C or when it
is killed (SIGTERM: ``kill``, a cluster's time limit); finished runs stay saved, so
rerunning the command redoes only what is missing.
"""
import argparse
import contextlib
import io
import math
import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import submitit
import torch
from tqdm import tqdm

from patches.vendor import PROJECT_ROOT
from runners.common import checkpoints
from runners.common.errors import JobsFailed, UsageError
from runners.common.seeding import available_cores
from runners.common.settings import frozen, with_overrides
from runners.registry import runner_module
from declared.settings import Checked, Count, Index

LOCAL_TIMEOUT_MIN = 30 * 24 * 60  # submitit's local executor ends a job after timeout_min (its default: 2)
POLL_SECONDS = 1.0
SLURM_FLAGS = {"partition": "--partition", "time_min": "--time", "gpus_per_job": "--gpus-per-job",
               "cpus_per_job": "--cpus-per-job", "mem_gb": "--mem"}
SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch and starts each task with srun


@dataclass(frozen=True)
class SlurmResources(Checked):
    """One SLURM job's resources: ``partition``, ``time_min`` (minutes), ``gpus_per_job``
    (0: a CPU job), ``cpus_per_job`` (the run's torch threads unless its preset or --threads
    says) and ``mem_gb`` (None: the partition's default)."""

    partition: str
    time_min: Count
    gpus_per_job: Index = 0
    cpus_per_job: Count = 1
    mem_gb: Count | None = None

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.partition, str) or not self.partition:
            raise ValueError(f"partition must be a name, got {self.partition!r}")


@dataclass(frozen=True)
class Launch:
    """How a command's runs execute. ``launcher``: inline, local or slurm; ``jobs``: at
    most this many at once (local: always set; slurm: None = no limit); ``gpus``: the GPU
    indices local jobs are spread over, ``jobs_per_gpu`` on each (empty: CPU jobs);
    ``slurm``: the resources of a SLURM job; ``requeues``: how many times a SLURM job that
    reaches its time limit is requeued (None: ``default_requeues``); ``job``: in a job's
    own process, the (arm, seed) it runs."""

    launcher: str = "inline"
    jobs: int | None = None
    gpus: tuple[int, ...] = ()
    jobs_per_gpu: int = 1
    slurm: SlurmResources | None = None
    requeues: int | None = None
    job: tuple[str, int] | None = None


def resolve_launch(args: argparse.Namespace, section: Mapping[str, Any], device: torch.device,
                   preset_threads: int | None, source: str, cores: int | None = None,
                   gpu_count: int | None = None) -> tuple[Launch, int | None]:
    """The Launch of ``args`` and the torch threads of each run. ``section``: the preset's
    ``launcher`` section (SLURM resources; ``source`` names it in errors); ``device``: the
    runs' device; ``cores``, ``gpu_count``: this machine's (default: the cores this process
    may use, ``seeding.available_cores``, and the visible GPUs). The launcher decides how
    many runs go at once and where, never what a run computes: the threads (float sums
    depend on them) are --threads, else the preset's, else this machine's cores (slurm: a
    job's --cpus-per-job), whatever the launcher; local runs at once on CPUs default to
    cores // threads."""
    cores = cores or available_cores()
    if args.job is not None:
        return Launch(job=args.job), args.threads
    slurm_flags = {name: getattr(args, name) for name in SLURM_FLAGS}
    given = [SLURM_FLAGS[name] for name, value in slurm_flags.items() if value is not None]
    if args.launcher != "slurm" and given:
        raise UsageError(f"{', '.join(given)} set SLURM jobs: add --launcher slurm")
    if args.launcher != "slurm" and args.requeues is not None:
        raise UsageError("--requeues bounds the requeues of SLURM jobs at their time limit: add --launcher slurm")
    if args.launcher != "local" and args.jobs_per_gpu is not None:
        raise UsageError("--jobs-per-gpu spreads local jobs over GPUs: add --launcher local")
    threads = args.threads or preset_threads
    if args.launcher == "inline":
        if args.jobs is not None:
            raise UsageError("--jobs sets how many runs execute at once: add --launcher local or slurm")
        return Launch(), threads or cores
    if args.launcher == "slurm":
        missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
        if missing and not args.dry_run:
            raise UsageError(f"--launcher slurm: {' and '.join(missing)} not found: run it where SLURM is "
                             "installed (a cluster's login node)")
        resources = frozen(SlurmResources, with_overrides(dict(section), slurm_flags),
                           f"{source} launcher section (with the flags)")
        return Launch("slurm", jobs=args.jobs, slurm=resources, requeues=args.requeues), threads or resources.cpus_per_job
    if device.type != "cuda":
        gpus = ()
    elif device.index is not None:
        gpus = (device.index,)
    else:
        gpus = tuple(range(torch.cuda.device_count() if gpu_count is None else gpu_count))
    jobs_per_gpu = args.jobs_per_gpu or 1
    threads = threads or cores
    capacity = len(gpus) * jobs_per_gpu if gpus else max(1, cores // threads)
    jobs = min(args.jobs or capacity, capacity) if gpus else (args.jobs or capacity)
    return Launch("local", jobs=jobs, gpus=gpus, jobs_per_gpu=jobs_per_gpu), threads


class RunJob(submitit.helpers.Checkpointable):
    """What a job's process calls: ``python runners/<runner>.py ARGV``, which names its one
    run; a local GPU job first makes ``visible_gpu`` (an entry of its submitter's
    CUDA_VISIBLE_DEVICES) the one GPU it sees, before anything in it touches CUDA.
    Checkpointable: when SLURM signals the time limit or a preemption, the run writes its
    checkpoint at the end of the epoch in progress (``checkpoints.defer_preemption``),
    then submitit requeues the same call, which resumes the run from it."""

    def __call__(self, runner: str, argv: Sequence[str], visible_gpu: str | None = None) -> None:
        if visible_gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpu
        checkpoints.defer_preemption()
        runner_module(runner).main(list(argv))


DEFAULT_REQUEUES = 3  # before any run of the arms is measured


def default_requeues(run_seconds: float | None, time_min: int) -> int:
    """Requeues at the time limit that let a run of ``run_seconds`` (the longest arm's
    measured mean; None: not measured yet) finish in jobs of ``time_min`` minutes, plus one."""
    if run_seconds is None:
        return DEFAULT_REQUEUES
    return math.ceil(run_seconds / (time_min * 60)) + 1


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


def job_environment(runner: str) -> dict[str, str]:
    """What a job of ``runner`` needs in its environment beyond its submitter's: the project
    importable from any folder (PYTHONPATH), and what the runner declares its runs need
    (its module's ``JOB_ENVIRONMENT``, e.g. CLUTRR's fixed PYTHONHASHSEED)."""
    path = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    declared = getattr(runner_module(runner), "JOB_ENVIRONMENT", {})
    return {"PYTHONPATH": path, **declared}


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


def slurm_executor(folder: Path, resources: SlurmResources, jobs: int | None, runner: str,
                   requeues: int) -> submitit.SlurmExecutor:
    """submitit's SLURM executor writing its scripts and logs under ``folder``; a job that
    reaches its time limit is requeued at most ``requeues`` times."""
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=requeues)
    parameters = dict(job_name=runner, partition=resources.partition, time=resources.time_min,
                      cpus_per_task=resources.cpus_per_job,
                      setup=[f"export {name}={shlex.quote(value)}" for name, value in job_environment(runner).items()])
    if resources.gpus_per_job:
        parameters["gpus_per_node"] = resources.gpus_per_job
    if resources.mem_gb is not None:
        parameters["mem"] = f"{resources.mem_gb}GB"
    if jobs is not None:
        parameters["array_parallelism"] = jobs
    executor.update_parameters(**parameters)
    return executor


def submit_array(executor: submitit.SlurmExecutor, jobs: Sequence[Job], runner: str) -> list[submitit.Job]:
    """Submit ``jobs`` as one SLURM job array (sbatch once); their submitit handles. A
    refusal by sbatch (a wrong partition, a missing account, ...) is a UsageError with
    sbatch's own message (submitit's echo of it is not shown: one line says it)."""
    refusal = io.StringIO()
    try:
        with contextlib.redirect_stderr(refusal), executor.batch():
            handles = [executor.submit(RunJob(), runner, list(job.argv)) for job in jobs]
    except submitit.core.utils.FailedJobError as error:
        said = [line.strip() for line in str(error).splitlines() if line.strip()] or ["(no message)"]
        raise UsageError(f"--launcher slurm: sbatch refused the job array: {said[-1]}") from None
    sys.stderr.write(refusal.getvalue())
    return handles


def visible_gpu_entries() -> list[str]:
    """This process's CUDA_VISIBLE_DEVICES as a list, in torch's order of the GPUs it sees
    (entry i is torch's ``cuda:i``): indices, ``GPU-``/``MIG-`` UUIDs; 0, 1, ... when unset."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(index) for index in range(torch.cuda.device_count())]
    return [entry.strip() for entry in listed.split(",") if entry.strip()]


def visible_gpu_of(slot: int | None) -> str | None:
    """The CUDA_VISIBLE_DEVICES of a local job in ``slot``, torch's index of the GPU it runs
    on (None: a CPU job, which submitit shows no GPU): that GPU as this process's
    CUDA_VISIBLE_DEVICES names it (slot 1 under ``3,5`` is GPU 5; UUID and MIG entries as
    written). submitit would write the slot number itself (its ``visible_gpus`` takes
    indices), and a ``setup`` shell line would keep Ctrl-C from the job, so ``run_job`` sets
    it in the job's own process."""
    if slot is None:
        return None
    entries = visible_gpu_entries()
    if slot >= len(entries):
        raise UsageError(f"GPU {slot}: only {len(entries)} GPU(s) are visible (CUDA_VISIBLE_DEVICES="
                         f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    return entries[slot]


def local_executor(folder: Path) -> submitit.LocalExecutor:
    """submitit's local executor writing its logs under ``folder`` (its jobs inherit this
    process's environment: submit them within ``environment(job_environment(runner))``)."""
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)  # preempted (signalled) local jobs are requeued
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


@contextlib.contextmanager
def termination_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does, so that a killed
    command cancels its jobs instead of leaving them running without it; and SIGINT does so
    even in a command started with it ignored (in the background of a shell, with nohup): a
    local job started here inherits an ignored SIGINT, and submitit cancels a local job with
    SIGINT, which it would then never see."""
    previous = {number: signal.signal(number, signal.default_int_handler) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def execute(jobs: Sequence[Job], launch: Launch, folder: Path, runner: str, is_saved: Callable[[Job], bool],
            seconds_left: Callable[[list[str]], float | None]) -> None:
    """Run ``jobs`` through ``launch`` (local or slurm), submitit writing under ``folder``,
    until each has ended; ``is_saved(job)``: whether its run is in results.json (rereads
    it); ``seconds_left(arms)``: the expected seconds of runs of those arms. JobsFailed
    when some runs are missing afterwards; Ctrl-C or SIGTERM cancels the running jobs."""
    board = JobBoard(jobs, seconds_left)
    at_once = launch.jobs or len(jobs)
    with termination_interrupts():
        try:
            if launch.launcher == "slurm":
                longest = max((seconds_left([job.arm]) or 0.0 for job in jobs), default=0.0) or None
                requeues = launch.requeues if launch.requeues is not None else \
                    default_requeues(longest, launch.slurm.time_min)
                executor = slurm_executor(folder, launch.slurm, launch.jobs, runner, requeues)
                handles = submit_array(executor, board.waiting, runner)
                board.running = [(job, handle, None) for job, handle in zip(board.waiting, handles)]
                board.waiting = []
                free: list[int | None] = []
            else:
                executor = local_executor(folder)
                free = slots(launch)
            while board.waiting or board.running:
                while board.waiting and free:
                    slot = free.pop(0)
                    job = board.waiting.pop(0)
                    with environment(job_environment(runner)):
                        handle = executor.submit(RunJob(), runner, list(job.argv), visible_gpu_of(slot))
                    board.running.append((job, handle, slot))
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
