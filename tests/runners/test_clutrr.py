"""runners/clutrr.py end to end in a tiny mode (a test presets file: 48 training stories of
the shared CLUTRR data, 1-2 epochs, one seed): every arm runs and is reported, the baseline
arm is the upstream's run_experiment bit for bit, an SRN or GRN with zero steps trains
exactly as the baseline, nothing is written into vendor/, --dry-run shows the plan without
touching data, and bad input is one line with exit code 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from refiners.descent import DescentSettings
from refiners.schedule import step_counts
from patches import vendor
from patches.clutrr import NAME, upstream
from patches.clutrr.run_config import build_config
from patches.clutrr.stubs import MetricRecorder
from runners import clutrr as runner
from runners.common.invocation import arm_label
from runners import clutrr_data
from runners.clutrr_train import RunSettings, summarise, train
from runners.common.cli import main_guard
from runners.common.seeding import seed_everything
from tests import clutrr_world, killing
from tests.presets import tiny_preset, tiny_presets
from patches.vendor import PROJECT_ROOT

TINY = tiny_preset("clutrr")
ROWS, TESTED = TINY["train_rows"], TINY["test_rows"]  # the tiny runs test on the first TESTED stories of each file
FOLDER = f"train{ROWS}-epochs1-test{TESTED}"


@pytest.fixture(scope="module")
def tiny(tiny_argv) -> list[str]:
    """The options of a tiny run (the tiny preset: 1 seed, 1 epoch, 48 stories), the shared
    data, the CPU."""
    return tiny_argv("clutrr")


def run_cli(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / "clutrr.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def dry_run(argv: list[str], capsys) -> dict:
    runner.main([*argv, "--dry-run"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_every_kinds_arm_is_scored_on_every_k_and_reported(every_kind):
    run = every_kind("clutrr")
    for record in run.runs.values():
        metrics = record["metrics"]
        assert set(metrics) >= {f"acc_k{k}" for k in range(2, 11)} | {"best_234", "best_epoch"}
        assert metrics["best_234"] == pytest.approx((metrics["acc_k2"] + metrics["acc_k3"] + metrics["acc_k4"]) / 3)
        assert all(0 <= metrics[f"acc_k{k}"] <= 1 for k in range(2, 11))
        assert record["settings"]["data"] == f"{clutrr_data.NAME}_train{ROWS}_test{TESTED}"
        (entry,) = record["curve"]  # the one epoch: the upstream's loss, validation and test accuracies
        assert entry["test_mean_234"] == pytest.approx(metrics["best_234"]) and entry["train_loss"] > 0
    refiners = {record["arm"]: record["settings"]["refiner"] for record in run.runs.values()}
    assert refiners["srn"]["hidden"] == 512 and refiners["grn"]["hidden"] == 256 and refiners["grn"]["steps"] == 10
    # the converse of the zero-step test (which also passes when no refiner is installed): with
    # inner steps each refiner changes the forward pass from the first batch on, so the epoch's
    # training loss differs from the baseline's (same seed, same upstream random stream)
    losses = {record["arm"]: record["curve"][0]["train_loss"] for record in run.runs.values()}
    assert refiners["srn"]["steps"] > 0 and losses["srn"] != losses["baseline"] != losses["grn"]
    for record in run.runs.values():  # the step-count curve: the trained model's test at 0, 1, r/2 and r steps
        if record["arm"] != "baseline":
            steps = record["metrics"]["steps_curve"]
            assert [entry["refiner_steps"] for entry in steps] == step_counts(refiners[record["arm"]]["steps"])
            at_r = {key: value for key, value in steps[-1].items() if key != "refiner_steps"}
            assert at_r == {key: record["curve"][-1][key] for key in at_r}  # at r: the last epoch's test
    table = (run.folder / "results.md").read_text()
    assert "| RN (n=1) |" in table and "| p, RN + GRN vs RN |" in table and "k=10" in table
    assert "| p, RN + Slot Attention vs RN |" in table
    assert "(NeurIPS 2020 paper, 5 trials): not comparable: " in table and "epochs 1 (paper: 51)" in table
    assert table.split("\n# ")[0] in run.printed
    assert (run.folder / "accuracy_by_k.png").read_bytes()[:4] == b"\x89PNG"
    assert vendor.changes(vendor.checkout(NAME)) == []


def test_dry_run_shows_the_plan_without_touching_data(tiny, tmp_path, capsys):
    untouched = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    plan = dry_run(["--srn", "--grn", "--steps", "2", *tiny, *untouched], capsys)
    assert plan["device"] == "cpu" and plan["preset"] == "tiny" and plan["seeds"] == [0]
    assert plan["settings"]["epochs"] == 1 and plan["settings"]["train_rows"] == ROWS  # from the tiny preset
    assert plan["results"] == str(tmp_path / "out" / FOLDER / "results.json")
    arms = plan["arms"]
    assert list(arms) == ["baseline", "srn", "grn"] and arms["baseline"]["refiner"] is None
    assert arms["srn"]["refiner"] == {"kind": "srn", "steps": 2, "inner_lr": 0.001, "momentum": 0.0, "backprop": "unroll",
                                      "gradient": "first-order", "hidden": 512, "pieces": 20, "set_size": 20,
                                      "padding": "masked"}
    assert arms["grn"]["refiner"]["hidden"] == 256 and arms["grn"]["l2"] == 5e-6 and arms["srn"]["l2"] == 1e-4
    assert {arm["data"] for arm in arms.values()} == {f"{clutrr_data.NAME}_train{ROWS}_test{TESTED}"}
    assert plan["runs"] == [{"arm": arm, "seed": 0, "done": False} for arm in arms]
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_padding_ablation_arms(tiny, tmp_path, capsys):
    arms = dry_run(["--padding-ablation", *tiny, "--out", str(tmp_path)], capsys)["arms"]
    shape = {name: (arm["refiner"] and (arm["refiner"]["steps"], arm["refiner"]["padding"])) for name, arm in arms.items()}
    assert shape == {"baseline": None, "srn, pad20 r=0, unmasked": (0, "naive"),
                     "srn, pad20 r=0, pad terms zeroed": (0, "zeroed"), "srn, pad20 r=0, masked": (0, "masked"),
                     "srn, unmasked": (5, "naive"), "srn": (5, "masked")}
    assert arm_label("srn, unmasked", runner.MODEL) == "RN + SRN, unmasked" and arm_label("baseline", runner.MODEL) == "RN"


@pytest.fixture(scope="module")
def baseline_two_epochs(tiny, tmp_path_factory):
    """The runner's baseline arm (in this process) for seed 0, two epochs."""
    out = tmp_path_factory.mktemp("runner")
    runner.main([*tiny, "--epochs", "2", "--out", str(out)])
    (run,) = json.loads((out / f"train{ROWS}-epochs2-test{TESTED}" / "results.json").read_text())["runs"].values()
    return {**run["metrics"], "curve": run["curve"]}


@pytest.mark.slow
def test_baseline_arm_is_the_upstream_run_experiment(baseline_two_epochs, tmp_path):
    root, name = clutrr_data.upstream_root(clutrr_world.data_dir()), clutrr_data.subset_name(ROWS, TESTED)
    recorder = MetricRecorder()
    with upstream(root, output=tmp_path / "upstream.log") as modules:
        config = build_config(modules, name, 0, tmp_path, "cpu", epochs=2, encoder_dropout=0.5, l2=1e-4)
        modules.util.set_seed(0)
        with clutrr_world.one_thread():
            modules.experiment.run_experiment(config, recorder)
    assert summarise(recorder.metrics) == baseline_two_epochs
    assert [entry["epoch"] for entry in baseline_two_epochs["curve"]] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("kind, inner_lr, hidden", [("srn", 0.001, 512), ("grn", 0.0005, 256)])
def test_zero_refinement_steps_train_exactly_as_the_baseline(baseline_two_epochs, kind, inner_lr, hidden, tmp_path):
    root, name = clutrr_data.upstream_root(clutrr_world.data_dir()), clutrr_data.subset_name(ROWS, TESTED)
    seed_everything(0, 1)
    refined = train(RunSettings(name, 2, 0.5, 1e-4, DescentSettings(kind, 0, inner_lr, hidden=hidden)), 0, root,
                    tmp_path, "cpu")
    (at_zero,) = refined.pop("steps_curve")
    assert refined == baseline_two_epochs
    last_epoch = baseline_two_epochs["curve"][-1]
    assert at_zero == {"refiner_steps": 0, **{key: last_epoch[key] for key in at_zero if key != "refiner_steps"}}


@pytest.mark.slow
def test_offline_default_download_is_one_line_with_exit_2(tiny, tmp_path):
    presets = tiny[:tiny.index("--data")]  # the default --data: the public copy
    result = run_cli(*presets, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot download https://") and "--data" in line and ".zip" in line
    assert list((tmp_path / "data" / "clutrr" / "data").iterdir()) == []  # no partial folder


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main_guard(lambda: runner.main(argv))
    assert stop.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("preset auto")]
    return line


def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    cpu = ["--device", "cpu", "--data-dir", str(clutrr_world.data_dir())]
    assert "unrecognized arguments: --bogus" in one_line_error(["--bogus"], capsys)
    assert "--epochs" in one_line_error(["--epochs", "0"], capsys)
    assert "no CUDA device" in one_line_error(["--device", "cuda", "--dry-run"], capsys)
    assert "drop --grn" in one_line_error(["--padding-ablation", "--grn", *cpu], capsys)
    assert "drop --padding-ablation" in one_line_error(["--padding-ablation", "--compare", *cpu], capsys)
    assert "holds no runs" in one_line_error(["--compare", *cpu, "--out", str(tmp_path / "empty")], capsys)
    assert "train_rows (--train-rows) must be in 1..15083" in one_line_error(["--train-rows", "99999", *cpu], capsys)
    assert "expected an integer, got 'abc'" in one_line_error(["--seeds", "abc"], capsys)
    bad = tiny_presets("clutrr", tmp_path / "bad.yaml", padding="sideways")
    line = one_line_error(["--config", str(bad), "--preset", "tiny", "--dry-run", *cpu], capsys)
    assert str(bad) in line and "padding must be one of" in line
    missing = one_line_error(["--data", str(tmp_path / "none.zip"), "--device", "cpu", "--data-dir", str(tmp_path),
                              "--out", str(tmp_path)], capsys)
    assert "no such file or folder" in missing
    (tmp_path / "other.zip").write_bytes(b"not the archive")
    assert "sha256" in one_line_error(["--data", str(tmp_path / "other.zip"), "--device", "cpu",
                                       "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path)], capsys)
    (tmp_path / "file").write_text("")
    assert "results folder" in one_line_error([*cpu, "--out", str(tmp_path / "file" / "out")], capsys)


def test_corrupt_cached_dataset_is_one_line_with_exit_2(tmp_path, capsys):
    cached = tmp_path / "clutrr" / "data" / clutrr_data.NAME
    cached.mkdir(parents=True)
    (cached / clutrr_data.TRAIN_FILE).write_text("id,story\n")
    line = one_line_error(["--device", "cpu", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    assert "corrupt" in line and "delete that folder" in line


@pytest.mark.slow
def test_script_fixes_the_hash_seed(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(f"import os, sys\nsys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
                     "from runners.clutrr import with_fixed_hash_seed\nwith_fixed_hash_seed()\n"
                     "print(os.environ['PYTHONHASHSEED'], hash('CLUTRR'))\n")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    seen = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env=environment, timeout=300)
    fixed = subprocess.run([sys.executable, "-c", "print(0, hash('CLUTRR'))"], capture_output=True, text=True,
                           env={**environment, "PYTHONHASHSEED": "0"}, timeout=60)
    assert seen.returncode == 0 and seen.stdout == fixed.stdout



@pytest.mark.slow
def test_a_killed_run_resumes_to_the_numbers_of_one_never_killed(tmp_path):
    """SIGKILL right after a checkpoint and during the evaluation (``killing.runner_points``):
    each rerun resumes the upstream's run_experiment where it
    stood (encoder, decoder, optimizers, schedulers, epoch and iteration indices, early
    stopping metrics, the recorder's metrics) and results.json has the numbers of a run
    never killed."""
    presets = tiny_presets("clutrr", tmp_path / "two-epochs.yaml", epochs=2)
    argv = ["--config", str(presets), "--preset", "tiny", "--device", "cpu", "--threads", "1",
            "--data", str(clutrr_world.shared_zip()), "--data-dir", str(clutrr_world.data_dir()),
            "--checkpoint-minutes", "0"]
    assert killing.run("none", "clutrr", [*argv, "--out", str(tmp_path / "whole")]).returncode == 0
    outputs = killing.killed_until_done("clutrr", [*argv, "--out", str(tmp_path / "killed")],
                                        killing.runner_points("before:runners.clutrr_train:summarise:1"))
    killing.assert_resumed_at_runner_points(outputs, 2)
    results = f"train{ROWS}-epochs2-test{TESTED}/results.json"
    assert killing.numbers(tmp_path / "killed" / results) == killing.numbers(tmp_path / "whole" / results)
