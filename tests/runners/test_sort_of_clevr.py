"""runners/sort_of_clevr.py end to end in a tiny mode, its dry run, and its answers to bad input."""
import json

import pytest

from patches.vendor import PROJECT_ROOT
from patches import relational_networks, vendor
from runners import sort_of_clevr
from runners.common.cli import main_guard
from runners.common.presets import CONFIG_DIR
from tests import killing
from tests.presets import tiny_preset, tiny_presets

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")

ROOT = PROJECT_ROOT
CONFIG = CONFIG_DIR / "sort_of_clevr.yaml"


def run(argv, config=CONFIG):
    sort_of_clevr.main(["--preset", "tiny", "--device", "cpu", "--config", str(config), *argv])


def exit_code_and_error(argv, capsys, config=CONFIG):
    with pytest.raises(SystemExit) as exit_:
        main_guard(lambda: run(argv, config))
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.slow
def test_both_arms_end_to_end_and_a_rerun_resumes(tmp_path, capsys):
    argv = ["--srn", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    run(argv)
    printed = capsys.readouterr().out
    assert "device cpu" in printed
    folder = tmp_path / "out" / "images2-epochs1"
    runs = json.loads((folder / "results.json").read_text())["runs"]
    assert sorted(run_["arm"] for run_ in runs.values()) == ["baseline", "srn"]
    srn = next(run_ for run_ in runs.values() if run_["arm"] == "srn")
    assert srn["settings"]["refiner"] == {"kind": "srn", "steps": 1, "inner_lr": 0.1, "momentum": 0.0,
                                          "backprop": "unroll", "gradient": "first-order", "hidden": 32, "embedding": 16, "pieces": 20}
    assert {"steps_curve", "robust_synthetic", "robust_dataset", "robustness_seconds"} <= srn["metrics"].keys()
    assert [entry["refiner_steps"] for entry in srn["metrics"]["steps_curve"]] == [0, 1]  # r = 1
    assert srn["metrics"]["steps_curve"][0].keys() == {"refiner_steps", "relational", "furthest", "closest", "count",
                                                       "non_relational"}
    checkpoints = sorted(path.name for path in (folder / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and {name.split("-")[0] for name in checkpoints} == {"baseline", "srn"}
    markdown = (folder / "results.md").read_text()
    for text in ("| Relational |", "| Furthest |", "| Closest |", "| Count |", "| Robustness (Synthetic) |",
                 "| Robustness (Dataset) |", "p, RN + SRN vs RN", "0 steps at test", "Evaluation took", "Preset tiny",
                 "## Refinement steps at evaluation", "| refiner steps | Relational, RN + SRN |",
                 "Paper, Table 2: Sort-of-CLEVR performance (NeurIPS 2020 paper, 5 trials): "
                 "not comparable: ", "refiner.momentum 0.0 (paper: 0.5)"):
        assert text in markdown and text in printed
    assert (folder / "curves.png").stat().st_size > 0 and (folder / "robustness_examples.png").stat().st_size > 0
    assert (folder / "steps_curve.png").stat().st_size > 0
    for run_ in runs.values():  # main.py's train and test accuracies after each epoch
        assert [set(entry) for entry in run_["curve"]] == [{"epoch", "train_rel", "train_norel", "validation_rel",
                                                            "validation_norel"}]
        assert "curve" not in run_["metrics"]
    assert vendor.changes(relational_networks.checkout()) == []

    run(argv)
    assert "reusing 2 finished run(s)" in capsys.readouterr().out
    assert json.loads((folder / "results.json").read_text())["runs"] == runs
    run([*argv, "--dry-run"])
    plan = json.loads(capsys.readouterr().out)
    assert [(run_["arm"], run_["done"]) for run_ in plan["runs"]] == [("baseline", True), ("srn", True)]
    assert plan["to_run"] == 0

    run(["--out", str(tmp_path / "baseline_only"), "--data-dir", str(tmp_path / "data")])
    alone_results = tmp_path / "baseline_only" / "images2-epochs1" / "results.json"
    (alone,) = json.loads(alone_results.read_text())["runs"].values()
    with_srn = next(run_ for run_ in runs.values() if run_["arm"] == "baseline")
    timings = ("robustness_seconds",)
    assert {k: v for k, v in alone["metrics"].items() if k not in timings} == \
        {k: v for k, v in with_srn["metrics"].items() if k not in timings}


def test_a_dry_run_prints_the_plan_and_touches_no_data(tmp_path, capsys):
    argv = ["--srn", "--steps", "3", "--clutter", "--epochs", "2",
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    run([*argv, "--dry-run"])
    plan = json.loads(capsys.readouterr().out)
    assert plan["runner"] == "sort_of_clevr" and plan["config"] == str(CONFIG) and plan["device"] == "cpu"
    tiny = {key: value for key, value in tiny_preset("sort_of_clevr").items() if key not in ("seeds", "threads", "refiner")}
    assert plan["settings"] == {**tiny, "epochs": 2, "clutter": True}
    assert set(plan["arms"]) == {"baseline", "srn"} and "refiner" not in plan["arms"]["baseline"]
    assert plan["arms"]["srn"]["refiner"]["steps"] == 3 and plan["arms"]["srn"]["refiner"]["embedding"] == 16
    assert plan["runs"] == [{"arm": "baseline", "seed": 0, "done": False}, {"arm": "srn", "seed": 0, "done": False}]
    assert plan["results"] == str(tmp_path / "out" / "images2-epochs2-clutter" / "results.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments"),
    (["--images", "0"], "must be an integer >= 1, got 0"),
    (["--steps", "3"], "add --srn"),
    (["--srn", "--inner-lr", "-1"], "must be a finite number > 0, got -1.0"),
    (["--grn"], "--grn: runners/sort_of_clevr.py cannot take a GRN"),
    (["--preset", "huge"], "has no preset 'huge' (it has: paper, smoke, tiny)"),
    (["--device", "cuda"], "no CUDA device is available here"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, error = exit_code_and_error([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")],
                                      capsys)
    assert code == 2 and error.count("\n") == 1 and message in error


def test_a_bad_preset_is_one_line_and_exit_2(tmp_path, capsys):
    broken = tiny_presets("sort_of_clevr", tmp_path / "broken.yaml", lr="fast", embed_dim=256)
    code, error = exit_code_and_error(["--dry-run"], capsys, broken)
    assert code == 2 and error.count("\n") == 1 and "unknown setting(s) embed_dim" in error
    tiny_presets("sort_of_clevr", broken, lr="fast")
    code, error = exit_code_and_error(["--dry-run"], capsys, broken)
    assert code == 2 and error.count("\n") == 1 and "lr must be a finite number > 0" in error


def test_an_unwritable_out_folder_and_a_corrupt_cache_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    corrupt = tmp_path / "data" / "sort_of_clevr" / relational_networks.checkout().commit[:12] / "train-2-seed1.npz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not an npz")
    for argv, message in (([f"--out={blocker / 'out'}"], "cannot create the results folder"),
                          ([f"--out={tmp_path / 'out'}", f"--data-dir={tmp_path / 'data'}"], "delete it")):
        code, error = exit_code_and_error(argv, capsys)
        assert code == 2 and error.count("\n") == 1 and message in error


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_numbers_of_one_never_killed(tmp_path):
    """SIGKILL right after a checkpoint, during the evaluation, then in the SRN arm's
    training (``killing.runner_points``): each rerun resumes (never restarts) and
    results.json has the numbers of a run never killed (main.py's shuffled question orders,
    the RN's own Adam and the best epoch included)."""
    config = tiny_presets("sort_of_clevr", tmp_path / "three-epochs.yaml", epochs=3)
    argv = ["--srn", "--preset", "tiny", "--config", str(config), "--device", "cpu",
            "--data-dir", str(tmp_path / "data"), "--checkpoint-minutes", "0"]
    assert killing.run("none", "sort_of_clevr", [*argv, "--out", str(tmp_path / "whole")]).returncode == 0
    outputs = killing.killed_until_done("sort_of_clevr", [*argv, "--out", str(tmp_path / "killed")],
                                        [*killing.runner_points("before:runners.sort_of_clevr_train:accuracies:1"),
                                         killing.AFTER_A_CHECKPOINT])
    killing.assert_resumed_at_runner_points(outputs, 3)
    assert "reusing 1 finished run(s)" in outputs[3] and "srn, seed 0: resuming at epoch 2 of 3" in outputs[3]
    results = "images2-epochs3/results.json"
    assert killing.numbers(tmp_path / "killed" / results) == killing.numbers(tmp_path / "whole" / results)
