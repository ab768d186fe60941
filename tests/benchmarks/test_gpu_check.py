"""benchmarks/gpu_check.py in its tiny mode on the CPU (circles, the cheapest runner): the
report has every measurement the check promises; its comparisons fail when they should;
bad devices are one line and exit code 2."""
import json

import pytest
import torch

from benchmarks import gpu_check
from runners.common.cli import main_guard
from runners.registry import arm_builder

CPU = torch.device("cpu")


@pytest.mark.slow
def test_the_tiny_check_writes_cost_agreement_and_forecast(tmp_path, capsys):
    gpu_check.main(["--tiny", "--device", "cpu", "--only", "circles", "--out", str(tmp_path / "out"),
                    "--data-dir", str(tmp_path / "data")])
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert (report["scale"], report["preset"], report["device"]) == ("tiny", "tiny", "cpu")
    circles = report["runners"]["circles"]
    cost = circles["cost"]
    assert list(cost) == ["baseline", "srn"] and cost["srn"]["paper_appendix_g"] == "+10% per epoch"
    for arm in cost.values():
        assert arm["seconds_per_step"] > 0 and arm["peak_memory_gb"] is None
        assert arm["seconds_per_epoch"] == pytest.approx(arm["seconds_per_step"] * arm["batches_per_epoch"])
    captured = cost["srn"]["captured"]  # on the CPU: aot_eager
    assert captured["seconds_per_step"] > 0 and "captured" not in cost["baseline"]
    assert captured["x_baseline"] == pytest.approx(captured["seconds_per_step"] / cost["baseline"]["seconds_per_step"])
    assert cost["baseline"]["batches_per_epoch"] == 32 // 4  # the tiny preset's images at the check's batch
    assert cost["srn"]["x_baseline"] == pytest.approx(cost["srn"]["seconds_per_step"] / cost["baseline"]["seconds_per_step"])
    agreement = circles["agreement"]
    assert agreement["rerun_identical"] and agreement["zero_steps_equal_baseline"] == {"srn": True}
    assert agreement["launcher_local_equals_inline"] and agreement["runs"] == 2
    assert agreement["nondeterministic_kernel_calls"] == 0
    shared = circles["sharing"]
    assert list(shared["steps_per_second"]) == ["1", "2"] and all(rate > 0 for rate in shared["steps_per_second"].values())
    assert shared["speedup"]["1"] == 1.0
    assert shared["speedup"]["2"] == pytest.approx(shared["steps_per_second"]["2"] / shared["steps_per_second"]["1"])
    [table] = circles["forecast_hours"]["tables"].values()
    assert (table["runs"], table["epochs"]) == (9, 100)  # the paper preset: 3 arms x 3 seeds, 100 epochs
    per_run = {"baseline": cost["baseline"]["seconds_per_epoch"], "srn": cost["srn"]["seconds_per_epoch"]}
    expected = 3 * 100 * (per_run["baseline"] + 2 * per_run["srn"]) / 3600  # srn-s0-gradient costs as srn
    assert table["one_job"] == pytest.approx(expected) and table["shared"] is None  # a CPU holds one job
    printed = capsys.readouterr().out
    assert "| circles | srn |" in printed and "| circles | yes (srn) | srn: yes | yes (2 runs) |" in printed
    assert (tmp_path / "out" / "gpu_check.md").read_text() in printed


@pytest.mark.parametrize("fits, speedup, advised", [
    (4, {1: 1.0, 2: 1.6, 4: 1.9}, 4),
    (2, {1: 1.0, 2: 1.6, 4: 1.9}, 2),  # memory holds two
    (4, {1: 1.0, 2: 0.9, 4: 0.8}, 1),  # sharing was slower: one job at a time
], ids=["four", "memory-holds-two", "sharing-slower"])
def test_the_forecast_shares_the_gpu_as_the_fastest_measured_count_that_fits(monkeypatch, fits, speedup, advised):
    monkeypatch.setattr(gpu_check, "jobs_per_gpu", lambda cost, device: fits)
    result = {"cost": {"baseline": {"seconds_per_epoch": 10.0}, "srn": {"seconds_per_epoch": 30.0}},
              "sharing": {"speedup": speedup}}
    hours = gpu_check.forecast("circles", result, torch.device("cuda"), None)
    [table] = hours["tables"].values()
    assert table["one_job"] == pytest.approx(3 * 100 * (10 + 2 * 30) / 3600)
    assert hours["jobs_per_gpu_advised"] == advised and hours["jobs_per_gpu_memory_allows"] == fits
    if advised > 1:
        assert table["shared"] == pytest.approx(table["one_job"] / speedup[advised])
        assert hours["total_shared"] == pytest.approx(table["one_job"] / speedup[advised])
    else:
        assert table["shared"] is None and hours["total_shared"] is None


def test_a_check_stopped_partway_keeps_the_runners_it_finished(tmp_path, monkeypatch):
    cost = {"seconds_per_step": 0.1, "seconds_per_epoch": 1.0, "x_baseline": 1.0, "paper_appendix_g": None,
            "peak_memory_gb": None}
    finished = {"cost": {"baseline": cost, "srn": cost},
                "agreement": {"rerun_identical": True, "rerun_arm": "srn", "zero_steps_equal_baseline": {"srn": True},
                              "launcher_local_equals_inline": True, "runs": 2, "nondeterministic_kernel_calls": 0},
                "sharing": {"steps_per_second": {1: 2.0}, "speedup": {1: 1.0}, "seconds": 1.0}}

    def check_runner(runner, *rest):
        if runner == "circles":
            return finished
        raise KeyboardInterrupt  # stopped during the second runner

    monkeypatch.setattr(gpu_check, "check_runner", check_runner)
    with pytest.raises(KeyboardInterrupt):
        gpu_check.main(["--tiny", "--device", "cpu", "--only", "circles", "sort_of_clevr", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(report["runners"]) == ["circles"] and report["runners"]["circles"]["cost"] == finished["cost"]
    assert "| circles | srn |" in (tmp_path / "gpu_check.md").read_text()


def circles_arms(**options) -> dict:
    return arm_builder("circles")("tiny", CPU, None, None, batch_size=4, **options)


def test_a_rerun_that_differs_is_caught():
    same = gpu_check.bitwise_equal(gpu_check.trained(circles_arms()["srn"], 2),
                                   gpu_check.trained(circles_arms()["srn"], 2))
    other_seed = gpu_check.bitwise_equal(gpu_check.trained(circles_arms()["srn"], 2),
                                         gpu_check.trained(circles_arms(seed=1)["srn"], 2))
    assert same and not other_seed


def test_a_zero_step_arm_that_computes_something_else_is_caught():
    arms = circles_arms(refiner_steps=0)
    reference = gpu_check.first_step("circles", arms["baseline"])
    assert gpu_check.same_first_step(reference, gpu_check.first_step("circles", arms["srn"]))
    refining = circles_arms(refiner_steps=1)
    assert not gpu_check.same_first_step(reference, gpu_check.first_step("circles", refining["srn"]))


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "error: --device cuda: no CUDA device is available here; use --device cpu"),
    (["--device", "cpu"], "error: --device cpu: the full check measures a GPU; add --tiny to check the check on a CPU"),
])
def test_a_device_it_cannot_check_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main_guard(lambda: gpu_check.main([*argv, "--out", str(tmp_path)]))
    assert exit_.value.code == 2 and capsys.readouterr().err == message + "\n"
