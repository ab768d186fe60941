"""benchmarks/refiner_overhead.py: the table has each arm's median seconds per training step,
per epoch and its ratio to the baseline's, its FLOPs, kernel ops and host synchronisations
per step, and with --device cuda:N the arms are built with N as torch's current CUDA
device."""
import pytest
import torch

from benchmarks import refiner_overhead
from runners.common.arm_steps import ArmSteps

ROUNDED = 5e-5  # the table's seconds have 4 decimals


def test_the_table_has_the_ratio_of_each_arm_to_the_baseline(capsys):
    refiner_overhead.main(["--preset", "tiny", "--device", "cpu", "--repeats", "1", "--only", "circles",
                           "--batch-size", "16"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| circles |")]
    assert [row[1] for row in rows] == ["baseline", "srn"]
    (_, _, baseline, epoch, one, *_), (_, _, srn, _, ratio, *_, paper) = rows
    assert one == "1.00" and paper == "+10% per epoch |"
    batches = 32 // 16  # tiny: 32 images
    assert float(epoch) == pytest.approx(float(baseline) * batches, abs=ROUNDED * batches + 0.05)
    baseline, srn = float(baseline), float(srn)
    rounding = ROUNDED * (1 + srn / baseline) / (baseline - ROUNDED)  # what 4 decimals can move srn / baseline
    assert float(ratio) == pytest.approx(srn / baseline, abs=0.005 + rounding)


def test_the_device_asked_for_is_current_before_the_arms_are_built(monkeypatch, capsys):
    events = []
    monkeypatch.setattr(refiner_overhead, "resolve_device", lambda text: torch.device("cuda", 1))
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: events.append(("current", index)))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)

    def build(preset, device, data_dir, clutrr_source, batch_size, **options):
        events.append(("build", device))
        step = torch.zeros(())
        return {name: ArmSteps(torch.nn.Linear(1, 1), lambda: step, lambda: step, frozenset(), 1, ())
                for name in ("baseline", "srn")}

    monkeypatch.setattr(refiner_overhead, "arm_builder", lambda runner: build)
    monkeypatch.setattr(refiner_overhead, "step_peak_memory", lambda step, device: 0.0)  # no GPU here
    refiner_overhead.main(["--device", "cuda:1", "--repeats", "1", "--only", "circles"])
    assert events == [("current", 1), ("build", torch.device("cuda", 1))]
    assert "device cuda:1" in capsys.readouterr().out


def test_every_kind_and_variant_with_its_flop_ratio_and_peak_memory(capsys):
    """--kinds adds Slot Attention to the SRN arm of the preset; --variants adds the SRN with
    backprop through the last step (Slot Attention has no such setting) and every refiner
    at 0 steps, which computes less: fewer FLOPs than the same kind at its steps. One more
    inner step adds kernel ops to a refiner at its steps, fewer with backprop last (the step
    added builds no graph)."""
    refiner_overhead.main(["--preset", "tiny", "--device", "cpu", "--repeats", "1", "--only", "circles",
                           "--batch-size", "4", "--kinds", "slot-attention", "--variants", "last", "0 steps"])
    rows = {row[1]: row for row in (line.split(" | ") for line in capsys.readouterr().out.splitlines()
                                    if line.startswith("| circles |"))}
    assert list(rows) == ["baseline", "srn", "slot-attention", "srn, last", "srn, 0 steps", "slot-attention, 0 steps"]
    gflops = {name: float(row[5]) for name, row in rows.items()}  # 4 significant digits
    for name, value in gflops.items():
        assert float(rows[name][6]) == pytest.approx(value / gflops["baseline"], abs=0.005 + 1e-3 * value / gflops["baseline"])
    assert gflops["srn, 0 steps"] < gflops["srn, last"] < gflops["srn"]
    assert gflops["slot-attention, 0 steps"] < gflops["slot-attention"]
    assert all(float(row[11]) >= 0 for row in rows.values())
    per_inner_step = {name: row[9] for name, row in rows.items()}
    assert per_inner_step["srn, 0 steps"] == per_inner_step["baseline"] == "-"
    assert 0 < int(per_inner_step["srn, last"]) < int(per_inner_step["srn"])


def test_without_repeats_nothing_is_timed_and_the_flops_and_kernel_ops_are_still_counted(capsys):
    """The SRN's step launches the baseline's kernels and its inner steps' (ops per inner
    step: at r + 1 inner steps against r); the baseline's makes the host wait for nothing."""
    refiner_overhead.main(["--preset", "tiny", "--device", "cpu", "--repeats", "0", "--only", "circles",
                           "--batch-size", "4"])
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| circles |")]
    assert [row[1:5] for row in rows] == [["baseline", "-", "-", "-"], ["srn", "-", "-", "-"]]
    assert float(rows[1][5]) > float(rows[0][5]) > 0 and "not timed" in out
    (baseline_ops, one, no_inner_step, baseline_syncs), (ops, ratio, per_inner_step, syncs) = (
        row[7:11] for row in rows)
    assert (one, no_inner_step, baseline_syncs) == ("1.00", "-", "0") and int(ops) > int(baseline_ops) > 0
    assert float(ratio) == pytest.approx(int(ops) / int(baseline_ops), abs=0.005)
    assert 0 < int(per_inner_step) < int(ops) - int(baseline_ops) and int(syncs) >= 0
