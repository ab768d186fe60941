"""runners/sort_of_clevr.py end to end in a tiny mode, and its answers to bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from patches import relational_networks, vendor
from runners import sort_of_clevr
from runners.common.cli import main_guard

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")

ROOT = Path(__file__).resolve().parents[2]
TINY = {"seeds": 1, "train_images": 2, "validation_images": 1, "test_images": 2, "epochs": 1,
        "synthetic_positions": 2, "dataset_images": 2, "rotations": 4}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    common = {"batch_size": 8, "lr": 0.001, "steps": 1, "inner_lr": 0.1, "embed_dim": 16}
    (folder / "sort_of_clevr.yaml").write_text(json.dumps({"common": common, "smoke": TINY, "paper": TINY}))
    return folder


def run(argv, config_dir):
    sort_of_clevr.main(["--preset", "smoke", "--threads", "1", *argv], config_dir=config_dir)


def test_both_arms_end_to_end_and_a_rerun_resumes(tmp_path, config_dir, capsys):
    argv = ["--srn", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    run(argv, config_dir)
    printed = capsys.readouterr().out
    folder = tmp_path / "out" / "images2-epochs1"
    runs = json.loads((folder / "results.json").read_text())["runs"]
    assert sorted(run_["arm"] for run_ in runs.values()) == ["RN", "RN+SRN"]
    srn_metrics = next(run_["metrics"] for run_ in runs.values() if run_["arm"] == "RN+SRN")
    assert {"relational_zero_steps", "robust_synthetic", "robust_dataset", "robustness_seconds"} <= srn_metrics.keys()
    checkpoints = sorted(path.name for path in (folder / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and {name.split("-")[0] for name in checkpoints} == {"RN", "RN+SRN"}
    markdown = (folder / "results.md").read_text()
    for text in ("| Relational |", "| Furthest |", "| Closest |", "| Count |", "| Robustness (Synthetic) |",
                 "| Robustness (Dataset) |", "p, RN+SRN vs RN", "0 steps at test", "Evaluation took", "Smoke preset"):
        assert text in markdown and text in printed
    assert (folder / "validation.png").stat().st_size > 0 and (folder / "robustness_examples.png").stat().st_size > 0
    assert vendor.changes(relational_networks.checkout()) == []

    run(argv, config_dir)
    assert "reusing 2 finished run(s)" in capsys.readouterr().out
    assert json.loads((folder / "results.json").read_text())["runs"] == runs

    run(["--out", str(tmp_path / "baseline_only"), "--data-dir", str(tmp_path / "data")], config_dir)
    (alone,) = json.loads((tmp_path / "baseline_only" / "images2-epochs1" / "results.json").read_text())["runs"].values()
    with_srn = next(run_ for run_ in runs.values() if run_["arm"] == "RN")
    timings = ("robustness_seconds",)
    assert {k: v for k, v in alone["metrics"].items() if k not in timings} == \
        {k: v for k, v in with_srn["metrics"].items() if k not in timings}


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments"),
    (["--images", "0"], "must be >= 1"),
    (["--steps", "3"], "add --srn"),
    (["--srn", "--inner-lr", "-1"], "must be > 0"),
    (["--preset", "huge"], "invalid choice"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, config_dir, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main_guard(lambda: run([*argv, "--out", str(tmp_path)], config_dir))
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def test_an_unwritable_out_folder_and_a_corrupt_cache_exit_2(tmp_path, config_dir, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    corrupt = tmp_path / "data" / "sort_of_clevr" / relational_networks.checkout().commit[:12] / "train-2-seed1.npz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not an npz")
    for argv, message in (([f"--out={blocker / 'out'}"], "cannot create the results folder"),
                          ([f"--out={tmp_path / 'out'}", f"--data-dir={tmp_path / 'data'}"], "delete it")):
        with pytest.raises(SystemExit) as exit_:
            main_guard(lambda: run(argv, config_dir))
        assert exit_.value.code == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error


def test_the_script_answers_bad_input_with_exit_2():
    result = subprocess.run([sys.executable, "runners/sort_of_clevr.py", "--epochs", "x"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: argument --epochs") and result.stderr.count("\n") == 1
