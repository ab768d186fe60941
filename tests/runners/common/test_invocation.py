import json
import re

import pytest
import torch

from refiners.descent import DescentSettings
from refiners.slot_attention import SlotAttentionSettings
from runners.common.cli import ArgumentParser, add_common_arguments, parse
from runners.common.errors import UsageError
from runners.common.invocation import arm_label, arm_labels, print_plan, refiner_identity, resolve
from runners.common.results import ResultStore

PRESETS = """
common: {lr: 0.1, refiner: {srn: {steps: 5, inner_lr: null, hidden: 64}, grn: {steps: 10, inner_lr: 0.01}}}
smoke: {seeds: 2, threads: 1, epochs: 1}
paper: {seeds: 5, epochs: 50, refiner: {srn: {hidden: 512}}}
"""


def invocation(tmp_path, *argv, uses_edges=True, **options):
    path = tmp_path / "toy.yaml"
    path.write_text(PRESETS)
    parser = ArgumentParser()
    add_common_arguments(parser, "toy", uses_edges=uses_edges)
    device = [] if "--launcher" in argv else ["--device", "cpu"]
    return resolve("toy", parse(parser, ["--config", str(path), *device, *argv]), **options)


def test_the_preset_less_seeds_threads_and_refiner_is_the_runners_config(tmp_path):
    smoke = invocation(tmp_path, "--preset", "smoke")
    assert (smoke.preset, smoke.config, smoke.seeds, smoke.threads) == ("smoke", {"lr": 0.1, "epochs": 1}, range(2), 1)
    assert smoke.device == torch.device("cpu") and smoke.refiners == {}
    assert invocation(tmp_path, "--preset", "smoke", "--seeds", "3", "--threads", "2").seeds == range(3)


def test_refiner_arms_from_the_preset_and_the_flags(tmp_path):
    both = invocation(tmp_path, "--preset", "paper", "--srn", "--grn", "--steps", "3", "--inner-lr", "0.5",
                      "--momentum", "0.5")
    assert list(both.refiners) == ["srn", "grn"]
    assert both.refiners["srn"] == DescentSettings("srn", 3, 0.5, momentum=0.5, hidden=512)
    assert both.refiners["grn"] == DescentSettings("grn", 3, 0.5, momentum=0.5)
    assert refiner_identity(both.refiners["srn"]) == {"kind": "srn", "steps": 3, "inner_lr": 0.5, "momentum": 0.5,
                                                      "backprop": "unroll", "gradient": "first-order", "hidden": 512,
                                                      "pieces": 20}


def test_runs_saved_before_the_first_order_gradient_are_the_autograd_arms(tmp_path):
    """Every run saved before the setting existed computed the inner gradient by autograd:
    --gradient autograd names those runs (an identity without the key), the default never."""
    flags = ("--preset", "paper", "--srn", "--steps", "3", "--inner-lr", "0.5")
    autograd = refiner_identity(invocation(tmp_path, *flags, "--gradient", "autograd").refiners["srn"])
    first_order = refiner_identity(invocation(tmp_path, *flags).refiners["srn"])
    assert "gradient" not in autograd
    assert first_order == autograd | {"gradient": "first-order"}


def test_compile_is_on_with_cuda_off_on_the_cpu_and_on_when_asked(tmp_path):
    assert not invocation(tmp_path, "--preset", "smoke").capture
    assert invocation(tmp_path, "--preset", "smoke", "--compile", "on").capture
    assert not invocation(tmp_path, "--preset", "smoke", "--compile", "off").capture


def test_compile_on_where_torch_cannot_compile_is_one_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    with pytest.raises(UsageError, match=rf"^--compile on: torch {re.escape(torch.__version__)} cannot compile on "
                                         r"Python [0-9.]+; use --compile off$"):
        invocation(tmp_path, "--preset", "smoke", "--compile", "on")


def test_a_schedule_comes_from_the_flag_or_the_preset_and_identifies_its_arm(tmp_path):
    """Settings left at None (no schedule, the upstream's embedding width) stay out of the
    identity, so runs made before a kind had them keep theirs."""
    flagged = invocation(tmp_path, "--preset", "paper", "--srn", "--slot-attention", "--inner-lr", "0.5",
                         "--schedule", "0:5,100:0")
    assert flagged.refiners["srn"].schedule == flagged.refiners["slot-attention"].schedule == [[0, 5], [100, 0]]
    assert refiner_identity(flagged.refiners["srn"])["schedule"] == [[0, 5], [100, 0]]
    (tmp_path / "scheduled.yaml").write_text("smoke: {seeds: 1, refiner: {srn: {steps: 4, inner_lr: 0.1, "
                                             "schedule: [[0, 4], [10, 2]]}}}\n")
    parser = ArgumentParser()
    add_common_arguments(parser, "toy")
    args = parse(parser, ["--config", str(tmp_path / "scheduled.yaml"), "--preset", "smoke", "--srn", "--device", "cpu"])
    assert resolve("toy", args).refiners["srn"].schedule == [[0, 4], [10, 2]]


@pytest.mark.parametrize("argv,message", [
    (["--schedule", "0:5,0:3"], "--schedule: must have training steps >= 0 and strictly increasing"),
    (["--schedule", "0:5,10:-1"], "--schedule: must have step counts in [0, 1000]"),
    (["--schedule", "5"], "argument --schedule: expected TRAINING_STEP:STEPS,... (e.g. 0:10,2000:0), got '5'"),
])
def test_a_bad_schedule_flag_is_one_usage_error(tmp_path, argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        invocation(tmp_path, "--preset", "smoke", "--srn", "--inner-lr", "0.1", *argv)


def test_a_bad_schedule_in_a_preset_is_one_usage_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("smoke: {seeds: 1, refiner: {srn: {steps: 4, inner_lr: 0.1, "
                                       "schedule: [[10, 4], [5, 2]]}}}\n")
    parser = ArgumentParser()
    add_common_arguments(parser, "toy")
    args = parse(parser, ["--config", str(tmp_path / "bad.yaml"), "--preset", "smoke", "--srn", "--device", "cpu"])
    with pytest.raises(UsageError, match=re.escape("refiner.srn (with the flags): schedule must have training steps "
                                                   ">= 0 and strictly increasing, got [[10, 4], [5, 2]]")):
        resolve("toy", args)


def test_null_refiner_settings_come_from_the_runners_defaults_only_when_needed(tmp_path):
    asked = []

    def defaults(config):
        asked.append(config)
        return {"inner_lr": 0.25}

    assert invocation(tmp_path, "--preset", "smoke", "--srn", refiner_defaults=defaults).refiners["srn"].inner_lr == 0.25
    assert asked == [{"lr": 0.1, "epochs": 1}]
    assert invocation(tmp_path, "--preset", "smoke", "--srn", "--inner-lr", "0.3",
                      refiner_defaults=defaults).refiners["srn"].inner_lr == 0.3
    assert len(asked) == 1


@pytest.mark.parametrize("argv,message", [
    (["--steps", "3"], "--steps set the refiner arms: add --srn or --grn"),
    (["--srn"], "refiner.srn (with the flags): inner_lr must be a finite number > 0, got None"),
])
def test_bad_refiner_requests_are_usage_errors(tmp_path, argv, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        invocation(tmp_path, "--preset", "smoke", *argv)


def test_every_registered_kind_is_an_arm_with_its_settings_from_the_preset_its_defaults_and_the_flags(tmp_path):
    """A kind the preset has no section for takes its own defaults; a flag reaches every
    asked kind that has the setting, and only those."""
    arms = invocation(tmp_path, "--preset", "smoke", "--srn", "--slot-attention", "--inner-lr", "0.2", "--steps", "2",
                      "--no-gru", "--init", "gaussian")
    assert list(arms.refiners) == ["srn", "slot-attention"]
    assert arms.refiners["srn"] == DescentSettings("srn", 2, 0.2, hidden=64)
    assert arms.refiners["slot-attention"] == SlotAttentionSettings("slot-attention", steps=2, init="gaussian", gru=False)
    assert invocation(tmp_path, "--preset", "smoke", "--slot-attention").refiners["slot-attention"] == \
        SlotAttentionSettings("slot-attention")


@pytest.mark.parametrize("argv,uses_edges,message", [
    (["--grn"], False, "--grn: runners/toy.py cannot take a GRN: it refines edge weights"),
    (["--srn", "--mlp-hidden", "8"], True, "--mlp-hidden is a setting of slot-attention, not of the arm(s) asked for (srn)"),
    (["--slot-attention", "--init", "zeros"], True, "argument --init: invalid choice: 'zeros'"),
    (["--slot-attention", "--epsilon", "0"], True, "--epsilon: must be a finite number > 0, got 0.0"),
])
def test_a_kind_or_setting_the_runner_cannot_take_is_one_usage_error(tmp_path, argv, uses_edges, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        invocation(tmp_path, "--preset", "smoke", *argv, uses_edges=uses_edges)


def test_a_preset_kind_without_defaults_or_unknown_is_a_usage_error(tmp_path):
    (tmp_path / "one.yaml").write_text("smoke: {seeds: 1, refiner: {srn: {steps: 1, inner_lr: 0.1}}}\n")
    (tmp_path / "two.yaml").write_text("smoke: {seeds: 1, refiner: {dspn: {steps: 1}}}\n")
    parser = ArgumentParser()
    add_common_arguments(parser, "toy", uses_edges=True)
    args = parse(parser, ["--config", str(tmp_path / "one.yaml"), "--preset", "smoke", "--grn", "--device", "cpu"])
    with pytest.raises(UsageError, match=r"refiner.grn \(with the flags\): missing setting\(s\) steps, inner_lr"):
        resolve("toy", args)
    args = parse(parser, ["--config", str(tmp_path / "two.yaml"), "--preset", "smoke", "--device", "cpu"])
    with pytest.raises(UsageError, match="two.yaml refiner: unknown kind.s. dspn .known: srn, grn, slot-attention."):
        resolve("toy", args)


def test_plan_is_one_json_document_marking_finished_runs(tmp_path, capsys):
    plan_of = invocation(tmp_path, "--preset", "smoke", "--grn")
    arms = {"baseline": {"lr": 0.1}, "grn": {"lr": 0.1, "refiner": refiner_identity(plan_of.refiners["grn"])}}
    store = ResultStore(tmp_path / "results")
    store.put("grn", arms["grn"], 1, {"accuracy": 0.5}, 1.0)
    print_plan(plan_of, ResultStore(tmp_path / "results", create=False), arms, {"epochs": 1})
    plan = json.loads(capsys.readouterr().out)
    assert plan["arms"] == arms and plan["settings"] == {"epochs": 1} and plan["device"] == "cpu"
    assert [(run["arm"], run["seed"], run["done"]) for run in plan["runs"]] == [
        ("baseline", 0, False), ("grn", 0, False), ("baseline", 1, False), ("grn", 1, True)]
    assert plan["to_run"] == 3


def test_slurm_jobs_get_cuda_with_gpus_and_auto_means_paper(tmp_path):
    plan = ["--launcher", "slurm", "--partition", "gpu", "--time", "5", "--dry-run"]  # no sbatch needed to plan
    on_gpus = invocation(tmp_path, *plan, "--gpus-per-job", "1")
    assert (on_gpus.preset, on_gpus.device, on_gpus.seeds) == ("paper", torch.device("cuda"), range(5))
    assert on_gpus.launch.slurm.gpus_per_job == 1 and on_gpus.threads == 1
    on_cpus = invocation(tmp_path, *plan, "--preset", "smoke", "--cpus-per-job", "3")
    assert (on_cpus.preset, on_cpus.device, on_cpus.threads) == ("smoke", torch.device("cpu"), 1)  # the preset's
    with pytest.raises(UsageError, match="--device cuda: with --launcher slurm"):
        invocation(tmp_path, *plan, "--device", "cuda")


def test_arm_labels_name_the_baseline_by_its_model_and_a_refiner_by_its_kind():
    assert arm_labels(["baseline", "srn", "grn", "slot-attention"]) == {
        "baseline": "baseline", "srn": "SRN", "grn": "GRN", "slot-attention": "Slot Attention"}
    assert arm_labels(["baseline", "srn"], "RN") == {"baseline": "RN", "srn": "RN + SRN"}
    assert arm_label("srn, pad20 r=0, masked", "RN") == "RN + SRN, pad20 r=0, masked"
