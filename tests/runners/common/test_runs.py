from pathlib import Path

import pytest
import torch

from runners.common.errors import UsageError
from runners.common.invocation import Invocation
from runners.common.launch import Launch
from runners.common.runs import Arm, format_eta, run_arms, seconds_left
from runners.common.results import ResultStore


def inline(seeds, launch=Launch()):
    """An invocation of ``seeds`` seeds on one CPU thread."""
    return Invocation("toy", "smoke", Path("toy.yaml"), {}, torch.device("cpu"), range(seeds), 1, {}, launch)


class Recorder:
    """An arm's run function that records its calls; optionally interrupted at one call."""

    def __init__(self, name, interrupt_at=None):
        self.name, self.calls, self.interrupt_at = name, [], interrupt_at

    def __call__(self, seed, checkpoint):
        self.calls.append(seed)
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        return {"draw": torch.rand(1).item(), "seed": seed}


def test_runs_every_pair_once_then_reuses(tmp_path):
    baseline, srn = Recorder("baseline"), Recorder("SRN")
    arms = {"baseline": Arm({"k": 1}, baseline), "SRN": Arm({"k": 1, "steps": 10}, srn)}
    results = run_arms(ResultStore(tmp_path), arms, inline(3))
    assert baseline.calls == [0, 1, 2] and srn.calls == [0, 1, 2]
    assert [run["seed"] for run in results["SRN"]] == [0, 1, 2]
    again = run_arms(ResultStore(tmp_path), arms, inline(3))
    assert baseline.calls == [0, 1, 2] and again == results


def test_each_run_is_seeded(tmp_path):
    arms = {"a": Arm({}, Recorder("a")), "b": Arm({}, Recorder("b"))}
    results = run_arms(ResultStore(tmp_path), arms, inline(2))
    assert results["a"] == results["b"]  # same seed, same draws
    assert results["a"][0]["draw"] != results["a"][1]["draw"]


def nondeterministic_run(seed, checkpoint):
    """A run whose kernel has no deterministic implementation (put_ without accumulation), twice."""
    for _ in range(2):
        torch.zeros(4).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
    return {"seed": seed}


def test_each_run_counts_its_nondeterministic_kernels_and_shows_the_count(tmp_path, capsys, recwarn):
    """Under warn_only=True such a kernel only warns, into a run's log; the count is kept
    with the run in results.json and printed as it finishes."""
    arms = {"baseline": Arm({}, lambda seed, checkpoint: {"seed": seed}), "srn": Arm({"k": 1}, nondeterministic_run)}
    store = ResultStore(tmp_path)
    run_arms(store, arms, inline(1))
    assert {run["arm"]: run["nondeterministic_kernels"] for run in store.refresh().runs.values()} == {
        "baseline": 0, "srn": 2}
    printed = capsys.readouterr()
    assert "baseline, seed 0: 0 s, 0 call(s) of a kernel without a deterministic implementation" in printed.out
    assert "srn, seed 0: 0 s, 2 call(s)" in printed.out
    shown = [warning for warning in recwarn if "put_ does not have a deterministic" in str(warning.message)]
    assert len(shown) == 1  # where warnings go (a run's log), once


def test_interrupt_keeps_finished_runs_and_rerun_resumes(tmp_path):
    flaky = Recorder("SRN", interrupt_at=2)
    arms = {"baseline": Arm({}, Recorder("baseline")), "SRN": Arm({"steps": 10}, flaky)}
    with pytest.raises(KeyboardInterrupt):
        run_arms(ResultStore(tmp_path), arms, inline(2))
    store = ResultStore(tmp_path)
    # seed order: baseline 0, SRN 0, baseline 1, then SRN 1 was interrupted
    assert len(store.finished("baseline", {}, range(2))) == 2 and len(store.finished("SRN", {"steps": 10}, range(2))) == 1
    resumed = {"baseline": Recorder("baseline"), "SRN": Recorder("SRN")}
    run_arms(store, {name: Arm(arms[name].settings, fn) for name, fn in resumed.items()}, inline(2))
    assert resumed["SRN"].calls == [1] and resumed["baseline"].calls == []


def test_a_jobs_process_runs_its_one_run_and_leaves_the_report_to_the_launching_command(tmp_path):
    baseline, srn = Recorder("baseline"), Recorder("srn")
    arms = {"baseline": Arm({}, baseline), "srn": Arm({"steps": 10}, srn)}
    assert run_arms(ResultStore(tmp_path), arms, inline(3, Launch(job=("srn", 1)))) is None
    assert (baseline.calls, srn.calls) == ([], [1])
    inline_run = run_arms(ResultStore(tmp_path / "inline"), {"srn": Arm({"steps": 10}, Recorder("srn"))}, inline(3))
    assert ResultStore(tmp_path).finished("srn", {"steps": 10}, range(3)) == [inline_run["srn"][1]]  # seeded alike
    run_arms(ResultStore(tmp_path), arms, inline(3, Launch(job=("srn", 1))))
    assert srn.calls == [1]  # already saved: not run again
    for job in (("grn", 0), ("srn", 3)):
        with pytest.raises(UsageError, match="no such run"):
            run_arms(ResultStore(tmp_path), arms, inline(3, Launch(job=job)))


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
