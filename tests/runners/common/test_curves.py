"""runners/common/curves.py: per-epoch statistics over seeds, by hand, and the figure."""
import math

import pytest

from runners.common import curves as curves_module
from runners.common.curves import (at_steps, curve_figure, curve_keys, curve_table, epoch_statistics, plot_curves,
                                   save_curves, save_steps_curves, steps_curve)
from runners.common.results import ResultStore, settings_key
from runners.common.stats import Metric

PNG = b"\x89PNG\r\n\x1a\n"


def curve(losses: list[float], ranked: dict[int, float] | None = None) -> list[dict]:
    return [{"epoch": epoch, "train_loss": loss, **({"h1_1": ranked[epoch]} if epoch in (ranked or {}) else {})}
            for epoch, loss in enumerate(losses, 1)]


def test_mean_and_sample_std_per_epoch_over_the_runs_that_have_the_key():
    """Losses 1, 3 (mean 2, std sqrt(2)) and 2, 2 (mean 2, std 0); a third run stops after
    epoch 1 (1, 2, 3: mean 2, std 1); h1_1 only at epoch 2, in two runs: 0.2, 0.4."""
    runs = [curve([1.0, 2.0], {2: 0.2}), curve([3.0, 2.0], {2: 0.4}), curve([2.0])]
    epochs, means, stds, counts = epoch_statistics(runs, "train_loss")
    assert epochs == [1, 2] and means == pytest.approx([2.0, 2.0]) and counts == [3, 2]
    assert stds == pytest.approx([1.0, 0.0])
    epochs, means, stds, counts = epoch_statistics(runs, "h1_1")
    assert epochs == [2] and means == pytest.approx([0.3]) and stds == pytest.approx([math.sqrt(0.02)])
    assert counts == [2]
    assert epoch_statistics(runs, "missing") == ([], [], [], [])


def test_the_keys_are_the_numeric_ones_besides_the_epoch_in_order():
    runs = {"a": [curve([1.0], {1: 0.5})], "b": [[{"epoch": 1, "train_loss": 1.0, "note": "x", "flag": True}]]}
    assert [metric.key for metric in curve_keys(runs)] == ["train_loss", "h1_1"]


def test_the_figure_has_a_panel_per_metric_and_a_line_per_arm(tmp_path):
    runs = {"baseline": [curve([1.0, 0.5], {2: 0.1}), curve([1.2, 0.4], {2: 0.3})], "SRN": [curve([0.9, 0.6])],
            "empty": []}
    metrics = [Metric("train_loss", "loss"), Metric("h1_1", "H@1 (%)", scale=100)]
    figure = curve_figure(runs, "title", metrics)
    loss, hits = figure.axes[:2]
    assert [line.get_label() for line in loss.get_lines()] == ["baseline (n=2)", "SRN (n=1)"]
    assert list(hits.get_lines()[0].get_ydata()) == pytest.approx([20.0])  # scaled, only the baseline ranked
    assert len(hits.get_lines()) == 1
    path = plot_curves(runs, tmp_path / "curves.png", "title")
    assert path.read_bytes().startswith(PNG) and list(tmp_path.iterdir()) == [path]


def test_a_metric_no_arm_has_gets_no_panel():
    runs = {"baseline": [curve([1.0, 0.5])], "SRN": [curve([0.9, 0.6])]}  # trained, never ranked
    metrics = [Metric("train_loss", "loss"), Metric("h1_1", "H@1 (%)", scale=100), Metric("mrr_1", "MRR")]
    figure = curve_figure(runs, "title", metrics)
    assert [axis.get_title() for axis in figure.axes if axis.get_visible()] == ["loss"]


def test_curves_are_kept_beside_the_metrics_and_read_back_in_seed_order(tmp_path):
    store = ResultStore(tmp_path)
    store.put("baseline", {"k": 1}, 1, {"acc": 0.6}, 1.0, curve=curve([1.2]))
    store.put("baseline", {"k": 1}, 0, {"acc": 0.5}, 1.0, curve=curve([1.0, 0.5]))
    store.put("baseline", {"k": 1}, 2, {"acc": 0.6}, 1.0)  # no curve recorded
    reread = ResultStore(tmp_path)
    assert reread.get("baseline", {"k": 1}, 0) == {"acc": 0.5}  # the curve is beside the metrics
    assert reread.curves("baseline", {"k": 1}, range(4)) == [curve([1.0, 0.5]), curve([1.2]), []]
    assert reread.curve("baseline", {"k": 1}, 3) is None and reread.curves("srn", {}, range(2)) == []


def test_the_table_has_a_row_per_epoch_and_a_column_per_metric_and_arm():
    runs = {"baseline": [curve([1.0, 0.5], {2: 0.1}), curve([1.2, 0.4], {2: 0.3})], "SRN": [curve([0.9])]}
    table = curve_table(runs, [Metric("train_loss", "loss", digits=2), Metric("h1_1", "H@1", scale=100)])
    assert table.splitlines() == [
        "| epoch | loss, baseline | loss, SRN | H@1, baseline | H@1, SRN |",
        "|---|---|---|---|---|",
        "| 1 | 1.10 ± 0.14 | 0.90 | - | - |",
        "| 2 | 0.45 ± 0.07 | - | 20.0 ± 14.1 | - |",
    ]


def test_each_runs_curve_is_written_as_event_files_tensorboard_reads(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    store = ResultStore(tmp_path)
    store.put("baseline", {"k": 1}, 0, {"acc": 0.5}, 1.0, curve=curve([1.0, 0.5], {2: 0.25}))
    store.put("srn", {"k": 2}, 0, {"acc": 0.7}, 1.0, curve=curve([0.8]))
    curves = save_curves(store, {"baseline": {"k": 1}, "srn": {"k": 2}, "grn": {"k": 3}},
                         {"baseline": "RN", "srn": "RN + SRN", "grn": "RN + GRN"}, range(2), "toy")
    assert curves == {"RN": [curve([1.0, 0.5], {2: 0.25})], "RN + SRN": [curve([0.8])], "RN + GRN": []}
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    folders = sorted(path.name for path in (tmp_path / "tensorboard").iterdir())
    assert folders == [f"baseline-{settings_key({'k': 1})}-seed0", f"srn-{settings_key({'k': 2})}-seed0"]
    events = EventAccumulator(str(tmp_path / "tensorboard" / folders[0])).Reload()
    assert sorted(events.Tags()["scalars"]) == ["h1_1", "train_loss"]
    assert [(event.step, event.value) for event in events.Scalars("train_loss")] == [(1, 1.0), (2, 0.5)]
    assert [(event.step, event.value) for event in events.Scalars("h1_1")] == [(2, 0.25)]
    save_curves(store, {"baseline": {"k": 1}}, {"baseline": "RN"}, range(1), "toy")  # rewritten, not appended
    events = EventAccumulator(str(tmp_path / "tensorboard" / folders[0])).Reload()
    assert len(events.Scalars("train_loss")) == 2


def test_a_step_count_curve_evaluates_at_0_1_half_and_all_steps():
    asked = []

    def evaluate(count):
        asked.append(count)
        return {"accuracy": count / 10}

    curve = steps_curve(evaluate, 6)
    assert asked == [0, 1, 3, 6]
    assert curve == [{"refiner_steps": count, "accuracy": count / 10} for count in (0, 1, 3, 6)]
    assert at_steps(curve, 3) == {"refiner_steps": 3, "accuracy": 0.3}
    asked.clear()  # the run's own evaluation at r steps, given: not measured again
    assert steps_curve(evaluate, 6, at_r={"accuracy": 0.61}) == [*curve[:3], {"refiner_steps": 6, "accuracy": 0.61}]
    assert asked == [0, 1, 3]


def test_step_count_curves_are_tabulated_and_drawn_over_steps_for_the_refiner_arms_only(tmp_path, monkeypatch):
    runs = {"RN": [{"accuracy": 0.5}],
            "RN + SRN": [{"accuracy": 0.7, "steps_curve": [{"refiner_steps": 0, "accuracy": 0.4},
                                                            {"refiner_steps": 2, "accuracy": 0.6}]},
                         {"accuracy": 0.8, "steps_curve": [{"refiner_steps": 0, "accuracy": 0.2},
                                                            {"refiner_steps": 2, "accuracy": 0.8}]}]}
    section = save_steps_curves(runs, tmp_path / "steps.png", "toy", [Metric("accuracy", "accuracy (%)", 100)])
    lines = section.splitlines()
    assert lines[1] == "## Refinement steps at evaluation"
    assert "| refiner steps | accuracy (%), RN + SRN |" in lines
    assert "| 0 | 30.0 ± 14.1 |" in lines and "| 2 | 70.0 ± 14.1 |" in lines
    assert (tmp_path / "steps.png").read_bytes()[:4] == b"\x89PNG"
    drawn = []
    monkeypatch.setattr(curves_module, "save_figure", lambda figure, path: drawn.append(figure) or path)
    save_steps_curves(runs, tmp_path / "again.png", "toy", [Metric("accuracy", "accuracy (%)", 100)])
    [reference] = [line for line in drawn[0].axes[0].get_lines() if line.get_label() == "RN (n=1)"]
    assert list(reference.get_ydata()) == [50.0, 50.0] and reference.get_linestyle() == "--"  # the baseline
    assert save_steps_curves({"RN": runs["RN"]}, tmp_path / "none.png", "toy", []) == ""
    assert not (tmp_path / "none.png").exists()
