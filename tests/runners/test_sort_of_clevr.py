"""runners/sort_of_clevr.py end to end in a tiny mode, its dry run, and its answers to bad input."""
import json

import pytest
import yaml

from patches.vendor import PROJECT_ROOT
from patches import relational_networks, vendor
from runners import sort_of_clevr
from runners.common.cli import main_guard
from tests import killing

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")

ROOT = PROJECT_ROOT
TINY = {"seeds": 1, "train_images": 2, "validation_images": 1, "test_images": 2, "epochs": 1,
        "synthetic_positions": 2, "dataset_images": 2, "rotations": 4}
COMMON = {"batch_size": 8, "lr": 0.001,
          "refiner": {"srn": {"steps": 1, "inner_lr": 0.1, "hidden": 32, "embedding": 16}}}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(yaml.safe_dump({"common": COMMON, "smoke": TINY, "paper": TINY}))
    return path


def run(argv, config):
    sort_of_clevr.main(["--preset", "smoke", "--threads", "1", "--device", "cpu", "--config", str(config), *argv])


def exit_code_and_error(argv, config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main_guard(lambda: run(argv, config))
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.slow
def test_both_arms_end_to_end_and_a_rerun_resumes(tmp_path, config, capsys):
    argv = ["--srn", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    run(argv, config)
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
                 "| Robustness (Dataset) |", "p, RN + SRN vs RN", "0 steps at test", "Evaluation took", "Smoke preset",
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

    run(argv, config)
    assert "reusing 2 finished run(s)" in capsys.readouterr().out
    assert json.loads((folder / "results.json").read_text())["runs"] == runs
    run([*argv, "--dry-run"], config)
    plan = json.loads(capsys.readouterr().out)
    assert [(run_["arm"], run_["done"]) for run_ in plan["runs"]] == [("baseline", True), ("srn", True)]
    assert plan["to_run"] == 0

    run(["--out", str(tmp_path / "baseline_only"), "--data-dir", str(tmp_path / "data")], config)
    alone_results = tmp_path / "baseline_only" / "images2-epochs1" / "results.json"
    (alone,) = json.loads(alone_results.read_text())["runs"].values()
    with_srn = next(run_ for run_ in runs.values() if run_["arm"] == "baseline")
    timings = ("robustness_seconds",)
    assert {k: v for k, v in alone["metrics"].items() if k not in timings} == \
        {k: v for k, v in with_srn["metrics"].items() if k not in timings}


@pytest.mark.slow
def test_local_jobs_give_the_numbers_of_the_inline_run(tmp_path, config, capsys):
    argv = ["--srn", "--seeds", "2", "--data-dir", str(tmp_path / "data")]
    run([*argv, "--out", str(tmp_path / "inline")], config)
    run([*argv, "--out", str(tmp_path / "local"), "--launcher", "local", "--jobs", "2"], config)
    assert "4 job(s), local launcher, at most 2 at once, 1 thread(s) each" in capsys.readouterr().out
    inline, local = (json.loads((tmp_path / name / "images2-epochs1" / "results.json").read_text())["runs"]
                     for name in ("inline", "local"))
    assert inline.keys() == local.keys() and len(local) == 4

    def numbers(run_):
        return {key: value for key, value in run_["metrics"].items() if not key.endswith("seconds")}
    assert all(numbers(local[key]) == numbers(inline[key]) for key in inline)


@pytest.mark.slow
def test_jobs_on_gpu_nodes_from_a_login_node_without_a_gpu(tmp_path, config, capsys, login_node):
    """--launcher slurm from a login node: the launching process never touches CUDA (the
    jobs' device is cuda), and once the jobs are done it writes the table and figures."""
    sort_of_clevr.main(["--srn", "--preset", "smoke", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                        "--out", str(tmp_path / "out"), "--launcher", "slurm", "--partition", "gpu", "--time", "5",
                        "--gpus-per-job", "1"])
    assert [argv[argv.index("--job") + 1] for argv in login_node] == ["baseline:0", "srn:0"]
    folder = tmp_path / "out" / "images2-epochs1"
    assert "RN + SRN" in (folder / "results.md").read_text()
    assert (folder / "curves.png").exists() and (folder / "robustness_examples.png").exists()


def test_a_dry_run_prints_the_plan_and_touches_no_data(tmp_path, config, capsys):
    argv = ["--srn", "--steps", "3", "--clutter", "--epochs", "2",
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    run([*argv, "--dry-run"], config)
    plan = json.loads(capsys.readouterr().out)
    assert plan["runner"] == "sort_of_clevr" and plan["config"] == str(config) and plan["device"] == "cpu"
    assert plan["settings"] == {**{key: TINY[key] for key in TINY if key != "seeds"}, "batch_size": 8, "lr": 0.001,
                                "epochs": 2, "clutter": True}
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
    (["--preset", "huge"], "has no preset 'huge' (it has: paper, smoke)"),
    (["--device", "cuda"], "no CUDA device is available here"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, config, capsys, tmp_path):
    code, error = exit_code_and_error([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")],
                                      config, capsys)
    assert code == 2 and error.count("\n") == 1 and message in error


def test_a_bad_preset_is_one_line_and_exit_2(tmp_path, config, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"common": {**COMMON, "lr": "fast", "embed_dim": 256}, "smoke": TINY}))
    code, error = exit_code_and_error(["--dry-run"], broken, capsys)
    assert code == 2 and error.count("\n") == 1 and "unknown setting(s) embed_dim" in error
    broken.write_text(yaml.safe_dump({"common": {**COMMON, "lr": "fast"}, "smoke": TINY}))
    code, error = exit_code_and_error(["--dry-run"], broken, capsys)
    assert code == 2 and error.count("\n") == 1 and "lr must be a finite number > 0" in error


def test_an_unwritable_out_folder_and_a_corrupt_cache_exit_2(tmp_path, config, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    corrupt = tmp_path / "data" / "sort_of_clevr" / relational_networks.checkout().commit[:12] / "train-2-seed1.npz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not an npz")
    for argv, message in (([f"--out={blocker / 'out'}"], "cannot create the results folder"),
                          ([f"--out={tmp_path / 'out'}", f"--data-dir={tmp_path / 'data'}"], "delete it")):
        code, error = exit_code_and_error(argv, config, capsys)
        assert code == 2 and error.count("\n") == 1 and message in error


@pytest.mark.slow
def test_slot_attention_runs_end_to_end(tmp_path, config, capsys):
    run(["--slot-attention", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")], config)
    folder = tmp_path / "out" / "images2-epochs1"
    runs = json.loads((folder / "results.json").read_text())["runs"]
    [slots] = [run_ for run_ in runs.values() if run_["arm"] == "slot-attention"]
    assert [entry["refiner_steps"] for entry in slots["metrics"]["steps_curve"]] == [0, 1, 3]  # T = 3
    assert "p, RN + Slot Attention vs RN" in (folder / "results.md").read_text()
    capsys.readouterr()
    run(["--compare", "--out", str(tmp_path / "out")], config)  # the refiner arms of the folder beside the baseline
    report = (folder / "compare.md").read_text()
    assert report.strip() in capsys.readouterr().out and "- RN + Slot Attention: {" in report
    assert "| p, RN + Slot Attention vs RN |" in report and "Relational" in report
    assert (folder / "compare_steps_curve.png").stat().st_size > 0


@pytest.mark.slow
def test_a_run_killed_at_any_point_resumes_to_the_numbers_of_one_never_killed(tmp_path):
    """SIGKILL right after a checkpoint, mid-write, during the evaluation, between saving
    the result and removing the checkpoint, then in the SRN arm's training: each rerun
    resumes (never restarts) and results.json has the numbers of a run never killed
    (main.py's shuffled question orders, the RN's own Adam and the best epoch included)."""
    config = tmp_path / "three-epochs.yaml"
    config.write_text(yaml.safe_dump({"common": COMMON, "smoke": {**TINY, "epochs": 3}}))
    argv = ["--srn", "--preset", "smoke", "--config", str(config), "--device", "cpu", "--threads", "1",
            "--data-dir", str(tmp_path / "data"), "--checkpoint-minutes", "0"]
    assert killing.run("none", "sort_of_clevr", [*argv, "--out", str(tmp_path / "whole")]).returncode == 0
    outputs = killing.killed_until_done("sort_of_clevr", [*argv, "--out", str(tmp_path / "killed")],
                                        [*killing.every_point("before:runners.sort_of_clevr_train:accuracies:1"),
                                         killing.AFTER_A_CHECKPOINT])
    killing.assert_resumed_at_every_point(outputs)
    assert "reusing 1 finished run(s)" in outputs[4] and "srn, seed 0: resuming at epoch 2 of 3" in outputs[5]
    results = "images2-epochs3/results.json"
    assert killing.numbers(tmp_path / "killed" / results) == killing.numbers(tmp_path / "whole" / results)
