"""What every runner promises alike, tested once for each runner of the registry
(runners/registry.py), at its tiny preset: every refiner kind it takes runs end to end, is
reported, reused by a rerun and laid beside the baseline by --compare; every kind at 0
inner steps trains as the baseline; local jobs and SLURM jobs launched from a login node
give the numbers of the inline run; the script answers bad input with one line and exit
code 2 before it touches anything, and --compare on a folder without runs is one line and
exit code 2."""
import os
import shutil
import subprocess
import sys

import pytest

from patches.vendor import PROJECT_ROOT
from refiners.registry import KINDS
from runners.common.cli import main_guard
from runners.registry import RUNNERS, runner_module
from tests.killing import numbers_of
from tests.runners.commands import kinds_taken, run_command, table_flags

pytestmark = pytest.mark.parametrize("runner", RUNNERS)


def numbers(runs: dict, arms=None) -> dict:
    """``killing.numbers_of`` the runs (of ``arms``, default all)."""
    return numbers_of({key: run for key, run in runs.items() if arms is None or run["arm"] in arms})


def png(path) -> bool:
    return path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_every_kind_it_takes_runs_end_to_end_is_reused_by_a_rerun_and_compared(runner, every_kind, tiny_argv, capsys):
    run = every_kind(runner)
    kinds = kinds_taken(runner)
    assert sorted(record["arm"] for record in run.runs.values()) == sorted(["baseline", *kinds])
    for record in run.runs.values():
        if record["arm"] == "baseline":
            assert "steps_curve" not in record["metrics"]
            continue
        curve = [entry["refiner_steps"] for entry in record["metrics"]["steps_curve"]]
        assert curve[0] == 0 and curve[-1] == record["settings"]["refiner"]["steps"] > 0
    report = (run.folder / "results.md").read_text()
    assert all(f"{KINDS[kind].label} vs " in report for kind in kinds)
    assert "## Refinement steps at evaluation" in report
    assert png(run.folder / "curves.png") and png(run.folder / "steps_curve.png")
    again = run_command(runner, run.argv, run.out)
    assert f"reusing {len(kinds) + 1} finished run(s)" in again.printed and again.runs == run.runs
    runner_module(runner).main([*tiny_argv(runner), "--compare", "--out", str(run.out)])
    compared = (run.folder / "compare.md").read_text()
    assert compared.strip() in capsys.readouterr().out
    assert all(f"{KINDS[kind].label} vs " in compared for kind in kinds) and png(run.folder / "compare_steps_curve.png")


@pytest.mark.slow
def test_every_kind_at_zero_inner_steps_trains_as_the_baseline(runner, every_kind, tiny_argv, tmp_path):
    """Each kind with --steps 0, beside the finished baseline: the refined set is the
    proposed one, so each arm that shares every setting of the baseline (besides its
    refiner) computes the baseline's numbers, its learning curve included. An arm may
    differ only in what its experiment lets a refiner arm have of its own (``per_refiner``:
    CLUTRR's GRN has an l2 penalty of its own), and is then left out."""
    run = every_kind(runner)
    shutil.copytree(run.out, tmp_path / "out")
    flags = [KINDS[kind].flag for kind in kinds_taken(runner)]
    zero = run_command(runner, [*tiny_argv(runner), *flags, "--steps", "0", "--seeds", "1"], tmp_path / "out")
    [baseline] = [record for record in zero.runs.values() if record["arm"] == "baseline"]
    compared = []
    for record in zero.runs.values():
        if (record["settings"].get("refiner") or {}).get("steps") != 0:
            continue
        differing = {name for name, value in baseline["settings"].items()
                     if name != "refiner" and record["settings"].get(name) != value}
        assert differing <= set(runner_module(runner).EXPERIMENT.per_refiner), record["arm"]
        if not differing:
            metrics = own_numbers(record["metrics"])
            assert [entry["refiner_steps"] for entry in metrics.pop("steps_curve")] == [0]
            assert metrics == own_numbers(baseline["metrics"]), record["arm"]
            assert record["curve"] == baseline["curve"], record["arm"]
            compared.append(record["arm"])
    assert "srn" in compared and len({record["arm"] for record in zero.runs.values()}) == len(flags) + 1


def own_numbers(metrics: dict) -> dict:
    """A run's metrics without its timings and the name of its own weights' file
    (Sort-of-CLEVR's ``checkpoint``)."""
    return {name: value for name, value in metrics.items() if not name.endswith("seconds") and name != "checkpoint"}


@pytest.mark.slow
def test_local_jobs_give_the_numbers_of_the_inline_run(runner, every_kind, tiny_argv, tmp_path):
    inline = every_kind(runner)
    local = run_command(runner, [*tiny_argv(runner), "--srn", "--seeds", "1", "--launcher", "local", "--jobs", "2"],
                        tmp_path / "local")
    assert "2 job(s), local launcher, at most 2 at once, 1 thread(s) each" in local.printed
    assert numbers(local.runs) == numbers(inline.runs, ("baseline", "srn"))
    assert png(local.folder / "curves.png") and (local.folder / "results.md").exists()


@pytest.mark.slow
def test_jobs_on_gpu_nodes_from_a_login_node_without_a_gpu(runner, every_kind, tiny_argv, tmp_path, login_node):
    """--launcher slurm from a login node: the jobs' device is cuda, yet the launching
    process never touches CUDA; the jobs (run here on the CPU) give the inline run's
    numbers, and once they are done the launching process writes the report and figures."""
    on_login_node = [option for option in tiny_argv(runner) if option not in ("--device", "cpu")]
    slurm = run_command(runner, [*on_login_node, "--srn", "--seeds", "1", "--launcher", "slurm", "--partition", "gpu",
                                 "--time", "5", "--gpus-per-job", "1"], tmp_path / "out")
    assert [argv[argv.index("--job") + 1] for argv in login_node] == ["baseline:0", "srn:0"]
    assert numbers(slurm.runs) == numbers(every_kind(runner).runs, ("baseline", "srn"))
    assert png(slurm.folder / "curves.png") and "SRN vs " in (slurm.folder / "results.md").read_text()


@pytest.mark.slow
def test_the_script_answers_a_device_it_lacks_in_one_line_with_exit_2_touching_nothing(runner, tmp_path):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / f"{runner}.py"), *table_flags(runner),
                             "--device", "cuda", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --device cuda: no CUDA device is available here")
    assert list(tmp_path.iterdir()) == []


def test_compare_without_runs_is_one_line_and_exit_2(runner, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main_guard(lambda: runner_module(runner).main([*table_flags(runner), "--compare", "--preset", "smoke",
                                                       "--device", "cpu", "--out", str(tmp_path)]))
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith("error: ") and error.count("\n") == 1
    assert "holds no runs: run the arms first" in error
