import pytest
import torch

from runners.common.runs import Arm, format_eta, run_arms, seconds_left
from runners.common.results import ResultStore


class Recorder:
    """An arm's run function that records its calls; optionally interrupted at one call."""

    def __init__(self, name, interrupt_at=None):
        self.name, self.calls, self.interrupt_at = name, [], interrupt_at

    def __call__(self, seed):
        self.calls.append(seed)
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        return {"draw": torch.rand(1).item(), "seed": seed}


def test_runs_every_pair_once_then_reuses(tmp_path):
    baseline, srn = Recorder("baseline"), Recorder("SRN")
    arms = {"baseline": Arm({"k": 1}, baseline), "SRN": Arm({"k": 1, "steps": 10}, srn)}
    results = run_arms(ResultStore(tmp_path), arms, range(3), threads=1)
    assert baseline.calls == [0, 1, 2] and srn.calls == [0, 1, 2]
    assert [run["seed"] for run in results["SRN"]] == [0, 1, 2]
    again = run_arms(ResultStore(tmp_path), arms, range(3), threads=1)
    assert baseline.calls == [0, 1, 2] and again == results


def test_each_run_is_seeded(tmp_path):
    arms = {"a": Arm({}, Recorder("a")), "b": Arm({}, Recorder("b"))}
    results = run_arms(ResultStore(tmp_path), arms, range(2), threads=1)
    assert results["a"] == results["b"]  # same seed, same draws
    assert results["a"][0]["draw"] != results["a"][1]["draw"]


def test_interrupt_keeps_finished_runs_and_rerun_resumes(tmp_path):
    flaky = Recorder("SRN", interrupt_at=2)
    arms = {"baseline": Arm({}, Recorder("baseline")), "SRN": Arm({"steps": 10}, flaky)}
    with pytest.raises(KeyboardInterrupt):
        run_arms(ResultStore(tmp_path), arms, range(2), threads=1)
    store = ResultStore(tmp_path)
    # seed order: baseline 0, SRN 0, baseline 1, then SRN 1 was interrupted
    assert len(store.finished("baseline", {}, range(2))) == 2 and len(store.finished("SRN", {"steps": 10}, range(2))) == 1
    resumed = {"baseline": Recorder("baseline"), "SRN": Recorder("SRN")}
    run_arms(store, {name: Arm(arms[name].settings, fn) for name, fn in resumed.items()}, range(2), threads=1)
    assert resumed["SRN"].calls == [1] and resumed["baseline"].calls == []


def test_the_eta_weighs_each_arm_by_its_measured_cost():
    assert seconds_left(["baseline", "srn"], {"baseline": [], "srn": []}) is None
    assert seconds_left(["baseline", "srn", "srn"], {"baseline": [10.0, 20.0], "srn": [40.0]}) == 15 + 40 + 40
    assert seconds_left(["baseline", "grn"], {"baseline": [10.0], "srn": [30.0], "grn": []}) == 10 + 20
    assert format_eta(None) == "ETA after the first run"
    assert format_eta(75.4) == "ETA 1:15" and format_eta(3725) == "ETA 1:02:05"


def test_measured_costs_come_back_from_results_json(tmp_path):
    store = ResultStore(tmp_path)
    store.put("srn", {"k": 1}, 0, {}, 30.0)
    store.put("srn", {"k": 2}, 0, {}, 99.0)
    assert ResultStore(tmp_path).seconds("srn", {"k": 1}) == [30.0] and store.seconds("baseline", {"k": 1}) == []
