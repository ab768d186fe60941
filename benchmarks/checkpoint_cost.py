"""What a run's resume checkpoint costs (runners.common.checkpoints): its size and the
seconds of one save (serialise, write, fsync, rename), against the seconds of one epoch,
for every arm of every runner at a preset (default: paper).

Each arm is built as its runner builds it (runners.common.arm_steps) and trained one step, so
that its state is what a run saves: the model (with a refiner's schedule counter), Adam's
moments, and where the runner keeps its best epoch's weights beside the last ones
(Sort-of-CLEVR's best validation epoch, C-SWM's train.py model.pt) that copy too; the
loop's other state (curves, question orders, logs) is small beside them. An epoch is the
median seconds of a training step times the runner's steps per epoch, on this machine.

    python benchmarks/checkpoint_cost.py [--preset paper] [--device auto|cpu|cuda] [--repeats 3]
        [--only circles sort_of_clevr cswm clutrr] [--clutrr-data data_db9b8f04.zip] [--data-dir data/]
"""
import argparse
import io
import sys
import tempfile
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from benchmarks.timing import median_seconds  # noqa: E402
from runners.common.arm_steps import ArmSteps, synchronise  # noqa: E402
from runners import clutrr_data  # noqa: E402
from runners.common.checkpoints import RunCheckpoint  # noqa: E402
from runners.common.cli import DATA_DIR, main_guard  # noqa: E402
from runners.common.device import resolve_device, use_device  # noqa: E402
from runners.registry import RUNNERS, arm_builder  # noqa: E402

KEEPS_BEST_WEIGHTS = ("sort_of_clevr", "cswm")  # their checkpoints also hold the best epoch's weights


def saved_state(runner: str, arm: ArmSteps) -> dict:
    """What a run of ``arm`` saves, in size: its model, Adam's state after one step and,
    where the runner keeps them, its best weights (serialised, as the runners keep them)."""
    optimizer = torch.optim.Adam([parameter for parameter in arm.model.parameters() if parameter.requires_grad])
    optimizer.step()  # the moments of every parameter with a gradient from the arm's training step
    state = {"model": arm.model.state_dict(), "optimizer": optimizer.state_dict()}
    if runner in KEEPS_BEST_WEIGHTS:
        weights = io.BytesIO()
        torch.save(arm.model.state_dict(), weights)
        state["best_weights"] = weights.getvalue()
    return state


def save_cost(state: dict, folder: Path, repeats: int) -> tuple[float, float]:
    """(MB on disk, median seconds of one save) of ``state`` as a run's checkpoint."""
    checkpoint = RunCheckpoint(folder / "run.ckpt", "benchmark", {"run": "benchmark"}, 0)
    seconds = median_seconds(lambda: checkpoint.write(1, 2, state), repeats)
    return checkpoint.path.stat().st_size / 1e6, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", help="paper, smoke, or another preset the runners have")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=3, help="timed saves and training steps (median)")
    parser.add_argument("--only", nargs="+", choices=RUNNERS, default=RUNNERS)
    parser.add_argument("--clutrr-data", default=clutrr_data.PUBLIC_COPY, help="data_db9b8f04.zip or its URL")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")
    device = resolve_device(args.device)
    use_device(device)
    rows = ["| runner | arm | checkpoint (MB) | seconds per save | seconds per epoch | save / epoch |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for runner in args.only:
            for name, arm in arm_builder(runner)(args.preset, device, args.data_dir, args.clutrr_data).items():
                step = median_seconds(lambda: (arm.train_step(), synchronise(device)), args.repeats)
                megabytes, save = save_cost(saved_state(runner, arm), Path(folder), args.repeats)
                epoch = step * arm.batches_per_epoch
                rows.append(f"| {runner} | {name} | {megabytes:.1f} | {save:.3f} | {epoch:.0f} | {save / epoch:.2e} |")
                print(rows[-1], flush=True)
    print(f"\npreset {args.preset}, device {device}, {torch.get_num_threads()} thread(s); median of {args.repeats}\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main_guard(main)
