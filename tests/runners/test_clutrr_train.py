"""runners/clutrr_train.py's reading of the upstream's logged metrics."""
import pytest

from runners.clutrr_data import TRAIN_FILE
from runners.clutrr_train import k_of_test_file, summarise


def logged(epoch: int, accuracy_234: float, other: float) -> list[tuple]:
    rows = [("train", f"{TRAIN_FILE}_loss", epoch, 3.0 - epoch), ("validate", f"{TRAIN_FILE}_accuracy", epoch, 0.1 * epoch)]
    for k in range(2, 11):
        rows.append(("test", f"1.{k}_test.csv_accuracy", epoch, accuracy_234 if k <= 4 else other))
        rows.append(("test", f"test_acc_1.{k}_test.csv", epoch, -1.0))  # the upstream's duplicate, ignored
    return rows


def test_best_epoch_by_mean_test_accuracy_on_k_2_3_4():
    summary = summarise(logged(1, 0.3, 0.9) + logged(2, 0.5, 0.1) + logged(3, 0.4, 0.2))
    assert summary["best_epoch"] == 2 and summary["best_234"] == pytest.approx(0.5)
    assert summary["acc_k3"] == 0.5 and summary["acc_k9"] == 0.1  # all k at the best epoch
    assert summary["final_234"] == pytest.approx(0.4)
    assert [entry["epoch"] for entry in summary["curve"]] == [1, 2, 3]
    assert [entry["train_loss"] for entry in summary["curve"]] == [2.0, 1.0, 0.0]
    assert [entry["test_k10"] for entry in summary["curve"]] == [0.9, 0.1, 0.2]
    assert [entry["validation_accuracy"] for entry in summary["curve"]] == pytest.approx([0.1, 0.2, 0.3])
    assert [entry["test_mean_234"] for entry in summary["curve"]] == pytest.approx([0.3, 0.5, 0.4])


def test_k_of_a_test_file():
    assert k_of_test_file("1.10_test.csv_accuracy") == 10 and k_of_test_file("1.10_test.csv_loss") is None
