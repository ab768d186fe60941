"""runners.common.compare: every identity of the arms in one results folder, named by what
sets it apart, in one table."""
import pytest

from runners.common.errors import UsageError
from runners.common.compare import compare_report, compared_arms, distinctions
from runners.common.results import ResultStore
from runners.common.stats import Metric

BASELINE = {"epochs": 2, "lr": 1e-4}
SRN = {"kind": "srn", "steps": 10, "inner_lr": 0.05, "backprop": "unroll"}
ENVIRONMENT = {"threads": 2, "device": "CPU", "deterministic": True, "torch": "2.13.0"}


def test_an_identity_is_named_by_the_settings_that_differ_among_its_kind_where_not_the_default():
    last, scheduled = {**SRN, "backprop": "last"}, {**SRN, "schedule": [[0, 10], [1000, 5], [2000, 0]]}
    assert distinctions("srn", [SRN, last, scheduled]) == ["", "backprop last", "schedule 0:10,1000:5,2000:0"]
    assert distinctions("srn", [SRN]) == [""]
    assert distinctions("srn", [{**SRN, "steps": 5}, SRN]) == ["steps 5", "steps 10"]  # no default: both named


@pytest.fixture
def store(tmp_path):
    """A baseline and three identities of the SRN arm over 2 seeds, and a run of other
    shared settings (another epoch count), in one folder."""
    store = ResultStore(tmp_path)
    refiners = {"srn": SRN, "last": {**SRN, "backprop": "last"}, "slot": {"kind": "slot-attention", "steps": 3}}
    for seed in range(2):
        store.put("baseline", BASELINE, seed, {"acc": 0.5 + seed / 10, "steps_curve": []}, 60.0, environment=ENVIRONMENT)
        for index, (name, refiner) in enumerate(refiners.items()):
            arm = refiner["kind"]
            curve = [{"refiner_steps": 0, "acc": 0.1}, {"refiner_steps": refiner["steps"], "acc": 0.6 + index / 10}]
            store.put(arm, {**BASELINE, "refiner": refiner}, seed, {"acc": 0.6 + index / 10 + seed / 100,
                                                                    "steps_curve": curve},
                      120.0 * (index + 1), environment=ENVIRONMENT)
    store.put("srn", {**BASELINE, "epochs": 3, "refiner": SRN}, 0, {"acc": 0.9}, 1.0, environment=ENVIRONMENT)
    return store


def test_the_arms_compared_are_those_with_the_baselines_shared_settings(store):
    arms = compared_arms(store, BASELINE)
    assert list(arms) == ["baseline", "srn", "srn, backprop last", "slot-attention"]
    assert arms["srn, backprop last"] == ("srn", {**BASELINE, "refiner": {**SRN, "backprop": "last"}})


def test_a_refiner_arms_own_settings_outside_its_refiner_section_count_and_name_it(tmp_path):
    """Circles' refiner arms also set detach_initial_set, which the baseline does not have."""
    store = ResultStore(tmp_path)
    store.put("baseline", BASELINE, 0, {"acc": 0.5}, 1.0, environment=ENVIRONMENT)
    for detach in (False, True):
        store.put("srn", {**BASELINE, "detach_initial_set": detach, "refiner": SRN}, 0, {"acc": 0.6}, 1.0,
                  environment=ENVIRONMENT)
    assert list(compared_arms(store, BASELINE)) == ["baseline", "srn, detach_initial_set False",
                                                    "srn, detach_initial_set True"]
    assert list(compared_arms(store, {**BASELINE, "refiner": None})) == list(compared_arms(store, BASELINE))  # CLUTRR's
    store.put("grn", {**BASELINE, "lr": 5e-6, "refiner": {**SRN, "kind": "grn"}}, 0, {"acc": 0.7}, 1.0,
              environment=ENVIRONMENT)  # CLUTRR's GRN has an l2 of its own: another lr here
    assert "grn" not in compared_arms(store, BASELINE) and "grn" in compared_arms(store, BASELINE, per_refiner=["lr"])


def test_the_report_lays_every_arm_with_its_settings_minutes_and_step_count_curves(store):
    report = compare_report(store, BASELINE, [Metric("acc", "accuracy", scale=100)], [Metric("acc", "accuracy")], "Tiny")
    assert report.startswith("Tiny: every arm of results.json, side by side")
    assert '- SRN, backprop last: {"backprop": "last", "inner_lr": 0.05, "kind": "srn", "steps": 10}' in report
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in report.splitlines() if line.startswith("| ")}
    assert rows["baseline (n=2)"] == ["55.0 ± 7.1", "1.0 ± 0.0 |"]
    assert rows["SRN, backprop last (n=2)"] == ["70.5 ± 0.7", "4.0 ± 0.0 |"]  # its own runs, 240 s each
    assert rows["Slot Attention (n=2)"][0] == "80.5 ± 0.7"
    assert "p, SRN, backprop last vs baseline" in rows
    assert "## Refinement steps at evaluation" in report and "accuracy, SRN, backprop last" in report
    assert (store.directory / "compare_steps_curve.png").stat().st_size > 0


def test_the_report_refuses_runs_of_different_environments(store):
    store.put("srn", {**BASELINE, "refiner": SRN}, 2, {"acc": 0.6}, 1.0, environment={**ENVIRONMENT, "threads": 1})
    with pytest.raises(UsageError, match="mixes runs made under different environments"):
        compare_report(store, BASELINE, [Metric("acc", "accuracy")], [], "Tiny")
