"""benchmarks/refiner_overhead.py in a tiny mode: every arm of two runners gets a
training step that really trains, and the table has each arm's ratio to the baseline."""
import torch

from benchmarks import refiner_overhead


def test_every_arm_steps_and_trains():
    circles = refiner_overhead.circles_steps("smoke", torch.device("cpu"), None, None)
    assert list(circles) == ["baseline", "srn"]
    for step in circles.values():
        first, second = step().item(), step().item()
        assert first != second  # the same batch after an update: the weights moved
    clevr = refiner_overhead.sort_of_clevr_steps("smoke", torch.device("cpu"), None, None)
    assert list(clevr) == ["baseline", "srn"]
    assert all(0 <= float(step()) <= 100 for step in clevr.values())  # RN.train_'s batch accuracy


def test_the_table_has_the_ratio_of_each_arm_to_the_baseline(capsys):
    refiner_overhead.main(["--preset", "smoke", "--device", "cpu", "--repeats", "1", "--only", "circles"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| circles |")]
    assert [row.split(" | ")[1] for row in rows] == ["baseline", "srn"]
    assert rows[0].split(" | ")[3] == "1.00" and float(rows[1].split(" | ")[3]) > 0
    assert rows[1].rstrip(" |").endswith("+10% per epoch")
