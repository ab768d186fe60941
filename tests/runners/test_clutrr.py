"""runners/clutrr.py end to end in a tiny mode (48 training stories of the shared CLUTRR
data, 1-2 epochs): every arm runs and is reported, the baseline arm is the upstream's
run_experiment bit for bit, an SRN or GRN with zero steps trains exactly as the baseline,
nothing is written into vendor/, and bad input is one line with exit code 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.clutrr import RefinerSettings
from patches import vendor
from patches.clutrr import NAME, upstream
from patches.clutrr.stubs import MetricRecorder
from runners import clutrr as runner
from runners import clutrr_data
from runners.clutrr_train import RunSettings, build_config, summarise, train
from runners.common.cli import main_guard
from runners.common.seeding import seed_everything
from tests import clutrr_world

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TINY = ["--seeds", "1", "--epochs", "1", "--train-rows", str(clutrr_world.TINY_ROWS), "--preset", "smoke"]


def run_cli(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / "clutrr.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def test_all_three_arms_end_to_end_then_resume(tmp_path):
    data = ["--data", str(clutrr_world.shared_zip()), "--data-dir", str(clutrr_world.data_dir()), "--out", str(tmp_path)]
    result = run_cli("--srn", "--grn", *TINY, *data)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / f"train{clutrr_world.TINY_ROWS}-epochs1"
    runs = json.loads((folder / "results.json").read_text())["runs"]
    assert sorted(run["arm"] for run in runs.values()) == ["GRN", "SRN", "baseline"]
    for run in runs.values():
        metrics = run["metrics"]
        assert set(metrics) >= {f"acc_k{k}" for k in range(2, 11)} | {"best_234", "best_epoch"}
        assert metrics["best_234"] == pytest.approx((metrics["acc_k2"] + metrics["acc_k3"] + metrics["acc_k4"]) / 3)
        assert all(0 <= metrics[f"acc_k{k}"] <= 1 for k in range(2, 11))
    table = (folder / "results.md").read_text()
    assert "| baseline (n=1) |" in table and "| p, GRN vs baseline |" in table and "k=10" in table
    assert table.split("\n# ")[0] in result.stdout
    assert (folder / "accuracy_by_k.png").stat().st_size > 0 and (folder / "curves.png").stat().st_size > 0
    assert vendor.changes(vendor.checkout(NAME)) == []
    again = run_cli("--srn", "--grn", *TINY, *data)
    assert again.returncode == 0 and "reusing 3 finished run(s)" in again.stdout
    assert json.loads((folder / "results.json").read_text())["runs"] == runs


@pytest.fixture(scope="module")
def baseline_two_epochs(tmp_path_factory):
    """The runner's baseline arm (in this process) for seed 0, two epochs."""
    out = tmp_path_factory.mktemp("runner")
    runner.main(["--seeds", "1", "--epochs", "2", "--train-rows", str(clutrr_world.TINY_ROWS), "--preset", "smoke",
                 "--data", str(clutrr_world.shared_zip()), "--data-dir", str(clutrr_world.data_dir()), "--out", str(out)])
    (run,) = json.loads((out / f"train{clutrr_world.TINY_ROWS}-epochs2" / "results.json").read_text())["runs"].values()
    return run["metrics"]


def test_baseline_arm_is_the_upstream_run_experiment(baseline_two_epochs, tmp_path):
    root, name = clutrr_world.tiny_data()
    recorder = MetricRecorder()
    with upstream(root, output=tmp_path / "upstream.log") as modules:
        config = build_config(modules, RunSettings(name, 2, 0.5, 1e-4), 0, tmp_path)
        modules.util.set_seed(0)
        with clutrr_world.one_thread():
            modules.experiment.run_experiment(config, recorder)
    assert summarise(recorder.metrics) == baseline_two_epochs
    assert len(baseline_two_epochs["curves"]["train_loss"]) == 2


@pytest.mark.parametrize("kind", ["SRN", "GRN"])
def test_zero_refinement_steps_train_exactly_as_the_baseline(baseline_two_epochs, kind, tmp_path):
    root, name = clutrr_world.tiny_data()
    seed_everything(0, 1)
    refined = train(RunSettings(name, 2, 0.5, 1e-4, RefinerSettings(kind, 0, 0.001)), 0, root, tmp_path)
    assert refined == baseline_two_epochs


def test_offline_default_download_is_one_line_with_exit_2(tmp_path):
    result = run_cli(*TINY, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot download https://") and "--data" in line and ".zip" in line


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main_guard(lambda: runner.main(argv))
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    data_dir = ["--data-dir", str(clutrr_world.data_dir())]
    assert "unrecognized arguments: --bogus" in one_line_error(["--bogus"], capsys)
    assert "--epochs" in one_line_error(["--epochs", "0"], capsys)
    missing = one_line_error(["--data", str(tmp_path / "none.zip"), "--data-dir", str(tmp_path), "--out", str(tmp_path)], capsys)
    assert "no such file or folder" in missing
    (tmp_path / "other.zip").write_bytes(b"not the archive")
    assert "sha256" in one_line_error(["--data", str(tmp_path / "other.zip"), "--data-dir", str(tmp_path / "d"),
                                       "--out", str(tmp_path)], capsys)
    (tmp_path / "file").write_text("")
    assert "results folder" in one_line_error([*data_dir, "--out", str(tmp_path / "file" / "out")], capsys)


def test_corrupt_cached_dataset_is_one_line_with_exit_2(tmp_path, capsys):
    cached = tmp_path / "clutrr" / "data" / clutrr_data.NAME
    cached.mkdir(parents=True)
    (cached / clutrr_data.TRAIN_FILE).write_text("id,story\n")
    line = one_line_error(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    assert "corrupt" in line and "delete that folder" in line


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
