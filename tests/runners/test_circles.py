import json
import subprocess
import sys

import pytest
import torch
import yaml

from refiners.descent import DescentSettings
from patches.vendor import PROJECT_ROOT
from runners import circles as runner
from runners.common.errors import UsageError
from runners.common.presets import CONFIG_DIR
from runners.common.invocation import preset_invocation
from runners.common.results import settings_key
from runners.common.seeding import seed_everything
from runners.common.settings import frozen
from tests import killing
from tests.presets import tiny_preset, tiny_presets

CPU = torch.device("cpu")
TINY = ["--preset", "tiny", "--device", "cpu"]


def script(*argv, cwd, env=None):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / "circles.py"), *argv],
                          cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def tiny_settings(**changes) -> runner.Settings:
    values = {key: value for key, value in tiny_preset("circles").items() if key not in ("seeds", "threads", "refiner")}
    return frozen(runner.Settings, {**values, **changes}, "tiny")


@pytest.mark.slow
def test_both_arms_end_to_end_on_the_cpu_then_resume_and_plan(tmp_path, capsys):
    argv = ["--srn", *TINY, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    runner.main(argv)
    directory = tmp_path / "out" / "tiny-32images-1epochs"
    runs = json.loads((directory / "results.json").read_text())["runs"]
    assert sorted((run["arm"], run["seed"]) for run in runs.values()) == [
        ("baseline", 0), ("baseline", 1), ("srn", 0), ("srn", 1)]
    for run in runs.values():
        assert 0 <= run["metrics"]["decomposed_all"] <= 1 and run["metrics"]["reconstruction_error"] > 0
        assert run["curve"] == [{"epoch": 1, "train_loss": run["metrics"]["train_loss"]}]
        if run["arm"] == "srn":  # the step-count curve at 0, 1 and r = 2 steps; at r, the table's numbers
            steps = run["metrics"]["steps_curve"]
            assert [entry["refiner_steps"] for entry in steps] == [0, 1, 2]
            assert [steps[-1][key] for key in ("decomposed_all", "reconstruction_error")] == \
                [run["metrics"][key] for key in ("decomposed_all", "reconstruction_error")]
    srn_settings = next(run["settings"] for run in runs.values() if run["arm"] == "srn")
    assert srn_settings["refiner"] == {"kind": "srn", "steps": 2, "inner_lr": 0.1, "momentum": 0.5,
                                       "backprop": "unroll", "gradient": "first-order", "hidden": 8,
                                       "embedding": 100, "pieces": 20}
    markdown = (directory / "results.md").read_text()
    assert "TINY SCALE (the tests)" in markdown and "| 5 circles: % decomposed |" in markdown
    assert "p, SRN vs baseline" in markdown and "test reconstruction error" in markdown
    assert "not comparable: batch_size 16 (paper: 64)" in markdown and "epochs 1 (paper: 100)" in markdown
    assert "paper: baseline" not in markdown  # no reference rows for a run that is not the paper's
    assert "## Refinement steps at evaluation" in markdown
    for name in ("decomposition_baseline", "decomposition_srn", "responsibility", "tsne", "curves", "steps_curve"):
        assert (directory / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((directory / "models").glob("*-seed0.pt"))) == 2
    assert (tmp_path / "data" / "circles" / "train-seed0-32.npz").exists()
    assert not [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]

    capsys.readouterr()
    runner.main(argv)
    assert "reusing 4 finished run(s)" in capsys.readouterr().out
    assert json.loads((directory / "results.json").read_text())["runs"] == runs

    runner.main([*argv, "--dry-run", "--seeds", "3"])
    plan = json.loads(capsys.readouterr().out)
    assert [(run["arm"], run["seed"], run["done"]) for run in plan["runs"]] == [
        ("baseline", 0, True), ("srn", 0, True), ("baseline", 1, True), ("srn", 1, True),
        ("baseline", 2, False), ("srn", 2, False)]
    assert plan["to_run"] == 2 and plan["device"] == "cpu"


@pytest.mark.slow
def test_compile_on_gives_the_eager_numbers_and_is_recorded(tmp_path, capsys):
    """--compile on, on the CPU: the refiner's loop traced by aot_eager (training, the
    evaluation's batches and the step-count curve's step counts), the eager run's metrics
    bit for bit; the run's environment says how it was captured."""
    argv = ["--srn", *TINY, "--seeds", "1", "--data-dir", str(tmp_path / "data")]
    runner.main([*argv, "--out", str(tmp_path / "eager")])
    runner.main([*argv, "--out", str(tmp_path / "captured"), "--compile", "on"])
    eager, captured = (json.loads((tmp_path / name / "tiny-32images-1epochs" / "results.json").read_text())["runs"]
                       for name in ("eager", "captured"))
    assert eager.keys() == captured.keys() and len(eager) == 2
    assert all(captured[key]["metrics"] == eager[key]["metrics"] for key in eager)
    assert all(run["environment"]["capture"] == "torch.compile aot_eager" for run in captured.values())
    assert all("capture" not in run["environment"] for run in eager.values())


def test_the_paper_preset_detaches_s0_and_trains_100_epochs_with_the_official_schedule():
    _, paper = preset_invocation(runner.RUNNER, runner.parse_args, "paper", ["--srn"])
    settings = frozen(runner.Settings, paper.config, "paper")
    assert (settings.epochs, settings.detach_initial_set) == (100, True)
    batches_per_epoch = settings.train_images // settings.batch_size  # the official code: 10 steps, 20 from epoch 21
    assert paper.refiners["srn"].schedule == [[0, 10], [20 * batches_per_epoch, 20]] and paper.refiners["srn"].steps == 20
    assert paper.refiners["srn"].momentum == 0.5


def test_gradient_to_s0_is_a_third_arm_where_the_preset_detaches_s0(tmp_path, capsys):
    config = tiny_presets("circles", tmp_path / "detached.yaml", detach_initial_set=True)
    runner.main(["--srn", "--s0-gradient", *TINY, "--config", str(config),
                 "--out", str(tmp_path / "out"), "--dry-run"])
    arms = json.loads(capsys.readouterr().out)["arms"]
    assert list(arms) == ["baseline", "srn", runner.S0_GRADIENT]
    assert (arms["srn"]["detach_initial_set"], arms[runner.S0_GRADIENT]["detach_initial_set"]) == (True, False)
    assert {key: value for key, value in arms["srn"].items() if key != "detach_initial_set"} == \
        {key: value for key, value in arms[runner.S0_GRADIENT].items() if key != "detach_initial_set"}
    with pytest.raises(UsageError, match="already passes gradient to S0"):
        runner.arm_models(tiny_settings(), {"srn": DescentSettings("srn", 2, 0.1)}, s0_gradient=True)
    with pytest.raises(UsageError, match="add --srn"):
        runner.arm_models(tiny_settings(detach_initial_set=True), {}, s0_gradient=True)


def test_dry_run_prints_the_arms_and_touches_nothing(tmp_path, capsys):
    runner.main(["--srn", "--steps", "4", *TINY, "--epochs", "3", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--dry-run"])
    plan = json.loads(capsys.readouterr().out)
    assert plan["runner"] == "circles" and plan["preset"] == "tiny" and plan["config"] == str(CONFIG_DIR / "circles.yaml")
    assert list(plan["arms"]) == ["baseline", "srn"]
    assert "refiner" not in plan["arms"]["baseline"] and "detach_initial_set" not in plan["arms"]["baseline"]
    assert plan["arms"]["srn"]["refiner"] == {"kind": "srn", "steps": 4, "inner_lr": 0.1, "momentum": 0.5,
                                              "backprop": "unroll", "gradient": "first-order", "hidden": 8,
                                              "embedding": 100, "pieces": 20}
    assert plan["compile"] == "off" and plan["checkpoint_minutes"] == 10.0
    assert plan["arms"]["srn"]["epochs"] == plan["settings"]["epochs"] == 3
    assert [(run["arm"], run["seed"], run["done"]) for run in plan["runs"]] == [
        ("baseline", 0, False), ("srn", 0, False), ("baseline", 1, False), ("srn", 1, False)]
    assert plan["results"].endswith("tiny-32images-3epochs/results.json")
    assert list(tmp_path.iterdir()) == []  # no data, results or models folder


def test_the_baseline_keeps_its_run_identity():
    """The baseline's runs are keyed by the same settings as before the refiner contract, so
    finished results stay reusable."""
    identity = runner.arm_identity(tiny_settings(), None)
    assert identity == {
        "data_seed": 0, "train_images": 32, "test_images": 30, "epochs": 1, "set_size": 9, "element_dims": 10,
        "batch_size": 16, "lr": 3.0e-4, "generator_widths": (4, 4, 4, 8), "decoder_widths": (8, 4, 4)}
    assert settings_key(identity) == "c575b2ef54ff"  # its key in results.json files written before


@pytest.mark.parametrize("seed", [0, 1])
def test_the_srn_arm_starts_from_the_baselines_g_and_f(seed):
    settings = tiny_settings()
    refiner = DescentSettings("srn", steps=2, inner_lr=0.1, momentum=0.5, hidden=8, embedding=100, seed=seed)
    seed_everything(seed, 1)
    baseline = runner.make_model(settings, None, CPU).state_dict()
    seed_everything(seed, 1)
    srn = runner.make_model(settings, refiner, CPU).state_dict()
    assert all(torch.equal(srn[name], value) for name, value in baseline.items())


def test_a_model_loaded_from_a_checkpoint_follows_its_schedule_from_the_saved_training_steps():
    refiner = DescentSettings("srn", steps=20, inner_lr=0.1, schedule=[[0, 10], [3, 20]], hidden=8, seed=0)
    settings = tiny_settings()
    images = torch.rand(2, 3, 64, 64)
    for trained, steps in ((2, 10), (3, 20)):
        state = runner.make_model(settings, refiner, CPU).state_dict()
        state["refiner.step_counter.training_step"] = torch.tensor(trained)
        model = runner.make_model(settings, refiner, CPU)
        model.load_state_dict(state)
        with torch.no_grad():
            model.eval()(images)
        assert model.refiner.steps == steps


@pytest.mark.parametrize("detach", [False, True])
def test_detach_initial_set_reaches_the_model(detach):
    refiner = DescentSettings("srn", steps=2, inner_lr=0.1, seed=0)
    assert runner.make_model(tiny_settings(detach_initial_set=detach), refiner, CPU).detach_initial_set is detach


@pytest.mark.parametrize("argv,message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "0"], "--epochs: must be an integer >= 1, got 0"),
    (["--images", "ten"], "--images: expected an integer, got 'ten'"),
    (["--images", "10"], r"train_images \(--images\) must be at least the batch size \(64\), got 10"),
    (["--grn"], "--grn: runners/circles.py cannot take a GRN"),
    (["--steps", "3"], "--steps set the refiner arms: add --srn"),
    (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda or cuda:N"),
])
def test_bad_arguments_are_usage_errors(tmp_path, argv, message):
    device = [] if "--device" in argv else ["--device", "cpu"]
    with pytest.raises(UsageError, match=message):
        runner.main([*argv, *device, "--preset", "smoke", "--out", str(tmp_path / "out"),
                     "--data-dir", str(tmp_path / "data")])
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("change,message", [
    ({"refiner": {"srn": {"steps": 2, "hidden": 8, "schedule": [[0, 10], [0, 20]]}}},
     r"refiner.srn .*schedule must have training steps >= 0 and strictly increasing"),
    ({"curriculum": {"epochs": 20, "steps": 10}}, r"unknown setting\(s\) curriculum"),
    ({"generator_widths": [4, 4, 8]}, "generator_widths must list 4 widths"),
    ({"generator_widths": [4, 4, 0, 8]}, "generator_widths must list 4 widths, each an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"lr": -1}, "lr must be a finite number > 0, got -1"),
    ({"epochs": 0, "test_images": 2.5}, "test_images must be an integer >= 1, got 2.5; epochs must be an integer >= 1"),
    ({"inner_steps": {0: 10}}, r"unknown setting\(s\) inner_steps"),
    ({"refiner": {"srn": {"steps": 2, "hidden": 8, "inner_lr": -1}}}, "refiner.srn .*inner_lr must be"),
])
def test_bad_presets_are_usage_errors_naming_the_file(tmp_path, change, message):
    config = str(tiny_presets("circles", tmp_path / "bad.yaml", **change))
    with pytest.raises(UsageError, match=message) as error:
        runner.main(["--srn", *TINY, "--config", config, "--dry-run"])
    assert str(error.value).startswith(config)


def test_config_without_the_preset_is_a_usage_error(tmp_path):
    config = tmp_path / "paperless.yaml"
    config.write_text(yaml.safe_dump({"tiny": tiny_preset("circles")}))
    with pytest.raises(UsageError, match=r"has no preset 'paper' \(it has: tiny\)"):
        runner.main(["--preset", "paper", "--config", str(config), "--device", "cpu", "--dry-run"])


@pytest.mark.slow
def test_corrupt_cache_exits_2_in_one_line(tmp_path):
    cache = tmp_path / "data" / "circles" / "train-seed0-64.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a dataset")
    result = script("--preset", "smoke", "--device", "cpu", "--images", "64", "--data-dir", str(tmp_path / "data"),
                    "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "is corrupt" in result.stderr and str(cache) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_run_killed_at_any_point_resumes_to_the_numbers_of_one_never_killed(tmp_path):
    """SIGKILL right after a checkpoint, mid-write, during the evaluation, between saving
    the result and removing the checkpoint (``killing.every_point``: the shared checkpoint
    mechanism's points, tested on this runner for all), then in the SRN arm's training:
    each rerun resumes (never restarts) and results.json has the numbers of a run never
    killed."""
    config = tiny_presets("circles", tmp_path / "three-epochs.yaml", seeds=1, epochs=3,
                          refiner={"srn": {"steps": 2, "schedule": [[0, 1], [4, 2]], "hidden": 8}})
    argv = ["--srn", *TINY, "--config", str(config), "--data-dir", str(tmp_path / "data"),
            "--checkpoint-minutes", "0"]
    assert killing.run("none", "circles", [*argv, "--out", str(tmp_path / "whole")]).returncode == 0
    outputs = killing.killed_until_done("circles", [*argv, "--out", str(tmp_path / "killed")],
                                        [*killing.every_point("before:runners.circles:evaluate:1"),
                                         killing.AFTER_A_CHECKPOINT])
    killing.assert_resumed_at_every_point(outputs)
    assert "reusing 1 finished run(s)" in outputs[4] and "srn, seed 0: resuming at epoch 2 of 3" in outputs[5]
    folder = "tiny-32images-3epochs/results.json"
    assert killing.numbers(tmp_path / "killed" / folder) == killing.numbers(tmp_path / "whole" / folder)
    assert [path.name for path in (tmp_path / "killed" / "tiny-32images-3epochs" / "resume").iterdir()
            if not path.name.startswith(".")] == []
