"""benchmarks/refiner_overhead.py: the table has each arm's median seconds per training step,
per epoch and its ratio to the baseline's, and with --device cuda:N the arms are built with
N as torch's current CUDA device."""
import pytest
import torch

from benchmarks import refiner_overhead
from benchmarks.arm_steps import ArmSteps

ROUNDED = 5e-5  # the table's seconds have 4 decimals


def test_the_table_has_the_ratio_of_each_arm_to_the_baseline(capsys):
    refiner_overhead.main(["--preset", "smoke", "--device", "cpu", "--repeats", "1", "--only", "circles",
                           "--batch-size", "16"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| circles |")]
    assert [row[1] for row in rows] == ["baseline", "srn"]
    (_, _, baseline, epoch, one, _), (_, _, srn, _, ratio, paper) = rows
    assert one == "1.00" and paper == "+10% per epoch |"
    batches = 8000 // 16  # smoke: 8,000 images
    assert float(epoch) == pytest.approx(float(baseline) * batches, abs=ROUNDED * batches + 0.05)
    baseline, srn = float(baseline), float(srn)
    rounding = ROUNDED * (1 + srn / baseline) / (baseline - ROUNDED)  # what 4 decimals can move srn / baseline
    assert float(ratio) == pytest.approx(srn / baseline, abs=0.005 + rounding)


def test_the_device_asked_for_is_current_before_the_arms_are_built(monkeypatch, capsys):
    events = []
    monkeypatch.setattr(refiner_overhead, "resolve_device", lambda text: torch.device("cuda", 1))
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: events.append(("current", index)))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)

    def build(preset, device, data_dir, clutrr_source, batch_size):
        events.append(("build", device))
        step = torch.zeros(())
        return {name: ArmSteps(torch.nn.Linear(1, 1), lambda: step, lambda: step, frozenset(), 1)
                for name in ("baseline", "srn")}

    monkeypatch.setitem(refiner_overhead.BUILDERS, "circles", build)
    refiner_overhead.main(["--device", "cuda:1", "--repeats", "1", "--only", "circles"])
    assert events == [("current", 1), ("build", torch.device("cuda", 1))]
    assert "device cuda:1" in capsys.readouterr().out
