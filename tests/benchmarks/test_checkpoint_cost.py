import pytest
import torch

from benchmarks import checkpoint_cost
from runners.registry import arm_builder


def test_a_checkpoints_size_is_its_files_and_holds_the_model_adam_and_the_best_weights(tmp_path):
    [arm] = [arm for name, arm in arm_builder("circles")("tiny", torch.device("cpu"), tmp_path, "").items()
             if name == "baseline"]
    arm.train_step()
    state = checkpoint_cost.saved_state("cswm", arm)  # a runner that keeps its best weights
    parameters = sum(parameter.numel() for parameter in arm.model.parameters())
    assert sum(len(moments["exp_avg"].flatten()) for moments in state["optimizer"]["state"].values()) == parameters
    assert "best_weights" in state and "best_weights" not in checkpoint_cost.saved_state("circles", arm)
    megabytes, seconds = checkpoint_cost.save_cost(state, tmp_path, 1)
    assert megabytes * 1e6 == (tmp_path / "run.ckpt").stat().st_size and seconds > 0
    assert megabytes * 1e6 > 4 * 4 * parameters  # weights, two moments and the best weights, in float32


@pytest.mark.slow
def test_the_table_has_a_row_per_arm(tmp_path, capsys):
    checkpoint_cost.main(["--preset", "tiny", "--only", "circles", "--repeats", "1", "--device", "cpu",
                          "--data-dir", str(tmp_path)])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| circles |")]
    assert [row.split(" | ")[1] for row in rows[-2:]] == ["baseline", "srn"]
