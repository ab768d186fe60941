"""runners/common/launch.py: what --launcher and its flags resolve to; jobs through
submitit's local executor for real (tiny circles runs: a failing job, Ctrl-C, kill); and the
sbatch script submitit writes for SLURM, up to the cluster (sbatch and srun stand-ins)."""
import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import submitit
import torch

from patches.vendor import PROJECT_ROOT
from runners import circles
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse
from runners.common.errors import JobsFailed, UsageError
from runners.common import launch
from runners.common.launch import (Job, Launch, SlurmResources, environment, execute, job_environment, jobs_of,
                                   resolve_launch, RunJob, slots, slurm_executor, submit_array,
                                   visible_gpu_of)
from tests import killing
from tests.presets import tiny_presets

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
SECTION = {"time_min": 90, "gpus_per_job": 1, "cpus_per_job": 4, "mem_gb": 16}


def launch_of(*argv, section=SECTION, device=CPU, preset_threads=None, cores=8, gpu_count=0):
    parser = ArgumentParser()
    add_common_arguments(parser, "toy")
    return resolve_launch(parse(parser, list(argv)), section, device, preset_threads, "toy.yaml", cores, gpu_count)


def test_inline_is_the_default_and_keeps_the_threads_of_the_preset():
    assert launch_of(preset_threads=2) == (Launch(), 2)
    assert launch_of("--threads", "3", preset_threads=2) == (Launch(), 3)


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "2"], "--jobs sets how many runs execute at once: add --launcher local or slurm"),
    (["--partition", "gpu", "--time", "5"], "--partition, --time set SLURM jobs: add --launcher slurm"),
    (["--launcher", "local", "--mem", "4"], "--mem set SLURM jobs: add --launcher slurm"),
    (["--launcher", "slurm", "--jobs-per-gpu", "2"], "--jobs-per-gpu spreads local jobs over GPUs"),
    (["--launcher", "slurm"], "missing setting(s) partition"),
    (["--launcher", "slurm", "--partition", "gpu", "--gpus-per-job", "-1"], "must be an integer >= 0, got -1"),
    (["--launcher", "local", "--requeues", "2"], "--requeues bounds the requeues of SLURM jobs at their time limit"),
    (["--launcher", "slurm", "--partition", "gpu", "--requeues", "-1"], "must be an integer >= 0, got -1"),
    (["--checkpoint-minutes", "-5"], "--checkpoint-minutes: must be a finite number >= 0, got -5.0"),
])
def test_flags_without_their_launcher_or_settings_are_usage_errors(argv, message, slurm_commands):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        launch_of(*argv)


def test_requeues_at_the_time_limit_cover_the_measured_run_time_plus_one(slurm_commands):
    assert launch.default_requeues(None, 60) == launch.DEFAULT_REQUEUES
    assert launch.default_requeues(3000.0, 60) == 2 and launch.default_requeues(3601.0, 60) == 3
    assert launch_of("--launcher", "slurm", "--partition", "gpu", "--requeues", "7")[0].requeues == 7


@pytest.mark.parametrize("argv", [["--launcher", "nowhere"], ["--launcher", "local", "--jobs", "0"]])
def test_an_unknown_launcher_or_no_jobs_is_refused(argv):
    with pytest.raises(UsageError):
        launch_of(*argv)


def test_local_runs_keep_the_inline_threads_and_as_many_go_at_once_as_the_cores_hold():
    """The launcher decides how many runs go at once, never their threads (float sums
    depend on them): a run on 8 cores without a preset's threads takes 8 wherever it runs."""
    assert launch_of() == (Launch(), 8)
    assert launch_of("--launcher", "local") == (Launch("local", jobs=1), 8)
    assert launch_of("--launcher", "local", preset_threads=2) == (Launch("local", jobs=4), 2)
    assert launch_of("--launcher", "local", "--jobs", "2") == (Launch("local", jobs=2), 8)
    assert launch_of("--launcher", "local", "--jobs", "2", preset_threads=1) == (Launch("local", jobs=2), 1)
    assert launch_of("--launcher", "local", "--jobs", "3", "--threads", "2")[1] == 2
    assert slots(Launch("local", jobs=3)) == [None, None, None]


def test_local_on_gpus_spreads_the_jobs_over_them():
    launch, threads = launch_of("--launcher", "local", "--jobs-per-gpu", "2", device=CUDA, gpu_count=2, preset_threads=4)
    assert (launch.jobs, launch.gpus, threads) == (4, (0, 1), 4)
    assert slots(launch) == [0, 1, 0, 1]
    launch, _ = launch_of("--launcher", "local", "--jobs-per-gpu", "2", "--jobs", "3", device=CUDA, gpu_count=2)
    assert slots(launch) == [0, 1, 0]
    launch, _ = launch_of("--launcher", "local", device=torch.device("cuda:1"), gpu_count=2)
    assert (launch.gpus, slots(launch)) == ((1,), [1])


@pytest.mark.parametrize("parent, expected", [
    ("3,5", ["3", "5"]),
    ("GPU-8e5f2c1a-0000-0000-0000-000000000001, GPU-8e5f2c1a-0000-0000-0000-000000000002",
     ["GPU-8e5f2c1a-0000-0000-0000-000000000001", "GPU-8e5f2c1a-0000-0000-0000-000000000002"]),
    ("MIG-2f9c6d41-1111-2222-3333-444444444444,7", ["MIG-2f9c6d41-1111-2222-3333-444444444444", "7"]),
])
def test_a_local_jobs_slot_names_its_gpu_as_the_parents_list_does(monkeypatch, parent, expected):
    """torch's cuda:1 under CUDA_VISIBLE_DEVICES=3,5 is physical GPU 5: the job in slot 1
    must be given 5 (not 1), and a UUID or MIG entry as it is written."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", parent)
    assert [visible_gpu_of(slot) for slot in (None, 0, 1)] == [None, *expected]
    with pytest.raises(UsageError, match="GPU 2: only 2 GPU"):
        visible_gpu_of(2)


def test_a_gpu_jobs_process_sees_only_its_gpu_before_its_run_starts(monkeypatch):
    """What RunJob does in the job's process: the runner's main already sees the one GPU."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # as submitit starts every local job
    seen = []
    runner = types.SimpleNamespace(main=lambda argv: seen.append((os.environ["CUDA_VISIBLE_DEVICES"], argv)))
    monkeypatch.setattr(launch, "runner_module", lambda name: runner)
    RunJob()("circles", ["--job", "srn:0"], "GPU-8e5f2c1a-0000-0000-0000-000000000002")
    assert seen == [("GPU-8e5f2c1a-0000-0000-0000-000000000002", ["--job", "srn:0"])]


def test_each_local_job_is_submitted_with_the_gpu_of_its_slot(tmp_path, monkeypatch):
    """execute hands RunJob the parent's entry of each job's slot (two jobs per GPU)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    submitted = []

    class Finished:
        def done(self):
            return True

    monkeypatch.setattr(submitit.LocalExecutor, "submit",
                        lambda self, function, *args: submitted.append((function, *args)) or Finished())
    jobs = jobs_of([(0, "baseline"), (0, "srn"), (1, "baseline")], [], "paper", "cuda", 4)
    execute(jobs, Launch("local", jobs=4, gpus=(0, 1), jobs_per_gpu=2), tmp_path, "circles", lambda job: True,
            lambda names: None)
    assert [(type(function), gpu) for function, _, _, gpu in submitted] == [(RunJob, "3"), (RunJob, "5"), (RunJob, "3")]


def test_slurm_resources_come_from_the_preset_and_the_flags(slurm_commands):
    launch, threads = launch_of("--launcher", "slurm", "--partition", "gpu", "--time", "30", "--jobs", "5")
    assert launch == Launch("slurm", jobs=5, slurm=SlurmResources("gpu", 30, 1, 4, 16)) and threads == 4
    launch, threads = launch_of("--launcher", "slurm", "--partition", "cpu", "--gpus-per-job", "0", section={
        "time_min": 60})
    assert launch.slurm == SlurmResources("cpu", 60, 0, 1, None) and launch.jobs is None and threads == 1


def test_a_jobs_own_process_ignores_the_launcher_flags():
    launch, threads = launch_of("--launcher", "local", "--jobs", "2", "--threads", "1", "--job", "srn, unmasked:3")
    assert launch == Launch(job=("srn, unmasked", 3)) and threads == 1
    with pytest.raises(UsageError, match="expected ARM:SEED"):
        launch_of("--job", "srn")


def test_a_job_is_the_command_narrowed_to_its_run():
    [job] = jobs_of([(3, "srn")], ["--srn", "--preset", "auto"], "paper", "cuda", 2)
    assert job == Job("srn", 3, ("--srn", "--preset", "auto", "--preset", "paper", "--device", "cuda",
                                 "--threads", "2", "--job", "srn:3"))
    parser = ArgumentParser()
    add_common_arguments(parser, "toy")
    args = parse(parser, list(job.argv))  # the later value of a repeated option wins
    assert (args.preset, args.device, args.threads, args.job) == ("paper", "cuda", 2, ("srn", 3))


def test_jobs_carry_the_project_path_and_what_their_runner_declares(monkeypatch):
    """CLUTRR's jobs get its fixed hash seed even from a launching process without it; the
    shared launcher knows nothing of any runner's needs."""
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert job_environment("circles") == {"PYTHONPATH": f"{PROJECT_ROOT}:/elsewhere"}
    carried = job_environment("clutrr")
    assert carried == {"PYTHONPATH": f"{PROJECT_ROOT}:/elsewhere", "PYTHONHASHSEED": "0"}
    with environment(carried):
        assert os.environ["PYTHONHASHSEED"] == "0" and os.environ["PYTHONPATH"] == carried["PYTHONPATH"]
    assert "PYTHONHASHSEED" not in os.environ and os.environ["PYTHONPATH"] == "/elsewhere"


@pytest.fixture
def slurm_commands(tmp_path, monkeypatch):
    """sbatch and srun stand-ins on PATH: sbatch accepts any script as job 4242."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_the_sbatch_script_has_the_resources_the_command_and_its_environment(tmp_path, slurm_commands, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    folder = tmp_path / "jobs"
    jobs = jobs_of([(0, "baseline"), (0, "srn")], ["--srn"], "paper", "cuda", 4)
    executor = slurm_executor(folder, SlurmResources("gpu", 90, 1, 4, 16), 1, "clutrr", 2)
    handles = submit_array(executor, jobs, "clutrr")
    assert [handle.job_id for handle in handles] == ["4242_0", "4242_1"]
    script = (folder / "4242_submission.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16GB", "#SBATCH --array=0-1%1",
                 "#SBATCH --job-name=clutrr", f"export PYTHONPATH={PROJECT_ROOT}", "export PYTHONHASHSEED=0"):
        assert line in script.splitlines() or any(row.startswith(line) for row in script.splitlines())
    assert "-m submitit.core._submit" in script.splitlines()[-1]
    for job, handle in zip(jobs, handles):
        submission = submitit.core.utils.DelayedSubmission.load(handle.paths.submitted_pickle)
        assert isinstance(submission.function, RunJob) and submission.args == ("clutrr", list(job.argv))
        assert submission._timeout_countdown == 2  # requeued at most twice at the time limit


def test_an_array_sbatch_refuses_is_one_line_with_its_message_and_exit_2(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    for name in ("sbatch", "srun"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    jobs = jobs_of([(0, "baseline")], [], "paper", "cpu", 1)
    executor = slurm_executor(tmp_path / "jobs", SlurmResources("nope", 90, 0, 1, None), None, "circles", 3)

    def launch():
        submit_array(executor, jobs, "circles")

    with pytest.raises(SystemExit) as exit_:
        main_guard(launch)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("error: --launcher slurm: sbatch refused the job array: sbatch: error: invalid "
                                       "partition specified: nope\n")


def test_slurm_where_there_is_none_is_a_usage_error_except_for_a_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="--launcher slurm: sbatch and srun not found"):
        launch_of("--launcher", "slurm", "--partition", "gpu")
    assert launch_of("--launcher", "slurm", "--partition", "gpu", "--dry-run")[0].slurm.partition == "gpu"


@pytest.fixture
def circles_argv(tmp_path):
    """A tiny circles command with the SRN arm."""
    return ["--srn", "--preset", "tiny", "--device", "cpu", "--data-dir", str(tmp_path / "data"),
            "--out", str(tmp_path / "out")]


def saved_runs(tmp_path) -> list[tuple[str, int]]:
    [results] = (tmp_path / "out").glob("*/results.json")
    return sorted((run["arm"], run["seed"]) for run in json.loads(results.read_text())["runs"].values())


@pytest.mark.slow
def test_a_failed_job_names_its_log_the_others_are_saved_and_a_rerun_redoes_only_it(tmp_path, circles_argv, capsys):
    failing = [*circles_argv, "--seeds", "1", "--launcher", "local", "--jobs", "2", "--inner-lr", "1e39"]  # SRN diverges
    with pytest.raises(JobsFailed, match="1 of 2 job"):
        circles.main(failing)
    output = capsys.readouterr()
    logs = [line.rsplit("its log: ", 1)[1] for line in output.err.splitlines() if line.startswith("failed: srn, seed")]
    assert len(logs) == 1 and "InnerLossNotFinite" in Path(logs[0]).read_text()
    assert saved_runs(tmp_path) == [("baseline", 0)]
    with pytest.raises(JobsFailed, match="1 of 1 job"):
        circles.main(failing)
    assert "reusing 1 finished run(s)" in capsys.readouterr().out


def job_processes(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (submitit's controllers and tasks)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def interrupt_once_running(folder: Path) -> None:
    """Ctrl-C for this process once a job under ``folder`` has started, and never before
    (a Ctrl-C while the data are generated would not test the jobs' cancelling)."""
    deadline = time.monotonic() + 600  # a loaded machine generates the data slowly
    while not job_processes(folder):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    time.sleep(1.0)
    _thread.interrupt_main()


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt here as in a terminal, also where the tests were
    started with SIGINT ignored (in the background of a shell without job control), which
    would make ``_thread.interrupt_main`` do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_ctrl_c_ends_the_running_jobs(tmp_path, circles_argv, ctrl_c_raises):
    folder = tmp_path / "out" / "tiny-32images-400epochs" / "jobs"
    threading.Thread(target=interrupt_once_running, args=(folder,), daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        circles.main([*circles_argv, "--epochs", "400", "--launcher", "local", "--jobs", "2"])
    deadline = time.monotonic() + 20
    while job_processes(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(folder.glob("*_log.err")) and job_processes(folder) == []


@pytest.mark.slow
def test_killing_the_command_ends_the_running_jobs(tmp_path, circles_argv):
    """``kill`` (SIGTERM) on the launching command, as a cluster's time limit sends it,
    cancels its jobs: none runs on without it."""
    folder = tmp_path / "out" / "tiny-32images-400epochs" / "jobs"
    command = subprocess.Popen([sys.executable, "runners/circles.py", *circles_argv, "--epochs", "400",
                                "--launcher", "local", "--jobs", "2"], cwd=PROJECT_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # a loaded machine generates the data slowly
    while not job_processes(folder) and command.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    command.terminate()
    _, error = command.communicate(timeout=60)
    deadline = time.monotonic() + 20
    while job_processes(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(folder.glob("*_log.err")) and job_processes(folder) == []
    assert "cancelled 2 running job(s)" in error and command.returncode == 130


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[list[str], Path]:
    """The options of a baseline circles run of 20 tiny epochs (long enough to be stopped
    midway) with a checkpoint at every epoch end, and results.json of that run never stopped."""
    folder = tmp_path_factory.mktemp("long-run")
    config = tiny_presets("circles", folder / "long.yaml", seeds=1, epochs=20)
    argv = ["--preset", "tiny", "--config", str(config), "--device", "cpu",
            "--data-dir", str(folder / "data"), "--checkpoint-minutes", "0"]
    assert killing.run("none", "circles", [*argv, "--out", str(folder / "whole")]).returncode == 0
    return argv, folder / "whole" / "tiny-32images-20epochs" / "results.json"


def waited_for(found, seconds: float = 600):
    """``found()`` once it is truthy (polled), failing the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (result := found()):
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)
    return result


@pytest.mark.slow
def test_a_local_job_killed_mid_run_resumes_on_the_next_command(tmp_path, long_run):
    argv, whole = long_run
    command = [sys.executable, "runners/circles.py", *argv, "--out", str(tmp_path), "--launcher", "local", "--jobs", "1"]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    waited_for(lambda: list(tmp_path.glob("*/resume/*.ckpt")))
    os.killpg(first.pid, signal.SIGKILL)  # the command, submitit's controller and the job, as a lost node
    first.wait()
    assert subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True).returncode == 0
    logs = "".join(path.read_text() for path in tmp_path.glob("*/jobs/*_log.out"))
    assert "baseline, seed 0: resuming at epoch" in logs
    assert killing.numbers(next(tmp_path.glob("*/results.json"))) == killing.numbers(whole)


@pytest.mark.slow
def test_a_preempted_job_checkpoints_at_its_epoch_end_is_requeued_and_resumes(tmp_path, long_run):
    """SLURM's signal before a time limit or a preemption (SIGUSR2, which submitit's local
    executor passes on as SLURM does), sent to a local job midway: the job writes its
    checkpoint at the end of the epoch in progress, submitit requeues it, and the requeued
    job resumes there and ends with the numbers of a run never stopped."""
    argv, whole = long_run
    [job] = jobs_of([(0, "baseline")], [*argv, "--out", str(tmp_path / "out")], "tiny", "cpu", 1)
    with environment(job_environment("circles")):
        handle = launch.local_executor(tmp_path / "jobs").submit(RunJob(), "circles", list(job.argv))
    waited_for(lambda: list(tmp_path.glob("out/*/resume/*.ckpt")))
    [task] = [pid for pid in job_processes(tmp_path / "jobs")
              if b"submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(task, signal.SIGUSR2)
    handle.result()
    log = handle.stdout()
    assert "baseline, seed 0: preempted: checkpoint of epoch" in log and "Requeued job" in log
    stopped_at = int(log.split("preempted: checkpoint of epoch ")[1].split()[0])
    assert f"baseline, seed 0: resuming at epoch {stopped_at + 1} of 20" in log
    assert killing.numbers(next(tmp_path.glob("out/*/results.json"))) == killing.numbers(whole)
