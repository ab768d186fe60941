"""C-SWM's frames as uint8 against the upstream's float64: one train.py epoch on the same
episodes stored both ways, timed alternately in one run, and the training set's size in
memory as train.py's dataset loads it.

    python benchmarks/cswm_frames.py [--episodes 200] [--repeats 3] [--threads 2]
"""
import argparse
import io
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.timing import alternating_medians  # noqa: E402
from patches import cswm, vendor  # noqa: E402
from patches.cswm_frames import uint8_utils  # noqa: E402
from runners import cswm_data  # noqa: E402

TRAIN_ARGS = ["--encoder", "medium", "--embedding-dim", "4", "--action-dim", "6", "--num-objects", "3",
              "--copy-action", "--hidden-dim", "512", "--batch-size", "32", "--epochs", "1", "--learning-rate", "1e-4"]


def float64_copy(path: Path, target: Path) -> Path:
    """The dataset with its frames as the upstream stores them (float64 k / 255)."""
    with h5py.File(path, "r") as source, h5py.File(target, "w") as copy:
        for name, episode in source.items():
            for key, values in episode.items():
                copy.create_dataset(f"{name}/{key}", data=values[:] / 255 if values.dtype == np.uint8 else values[:])
    return target


def loaded_megabytes(upstream: vendor.Upstream, path: Path) -> float:
    """The frames' bytes in memory once train.py's StateTransitionsDataset has loaded ``path``."""
    episodes = uint8_utils(upstream).StateTransitionsDataset(str(path)).experience_buffer
    return sum(episode[key].nbytes for episode in episodes for key in ("obs", "next_obs")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    upstream = vendor.checkout("c-swm")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        ours = cswm_data.ensure_dataset(upstream, scratch, "space", "train", args.episodes)
        theirs = float64_copy(ours, scratch / "float64.h5")
        sizes = {"uint8": ours.stat().st_size / 1e6, "float64": theirs.stat().st_size / 1e6}
        memory = {"uint8": loaded_megabytes(upstream, ours), "float64": loaded_megabytes(upstream, theirs)}

        def epoch(path: Path):
            def step():
                torch.manual_seed(0)
                cswm.run_script(upstream, "train.py", [*TRAIN_ARGS, "--dataset", str(path), "--seed", "0",
                                                       "--save-folder", str(scratch / "runs"), "--name", path.stem],
                                output=io.StringIO())
            return step

        steps = {"uint8": epoch(ours), "float64": epoch(theirs)}
        seconds = alternating_medians(steps, args.repeats)
    print(f"{args.episodes} Space Invaders episodes, one train.py epoch (K=3, hidden 512, batch 32), "
          f"{args.threads} threads, median of {args.repeats}:")
    for name in steps:
        print(f"  {name:7s}: {seconds[name]:6.1f} s per epoch, file {sizes[name]:7.1f} MB, "
              f"frames in memory {memory[name]:7.1f} MB")
    print(f"uint8 / float64: time {seconds['uint8'] / seconds['float64']:.2f}x, file "
          f"{sizes['uint8'] / sizes['float64']:.3f}x, memory {memory['uint8'] / memory['float64']:.3f}x")


if __name__ == "__main__":
    main()
