"""Time one upstream ``RN.train_`` step (batch of generated Sort-of-CLEVR questions) with and
without the SRN, and one eval forward, on the CPU: what a Sort-of-CLEVR epoch costs.

    python benchmarks/sort_of_clevr_step.py [--batch 64] [--steps 5] [--repeats 5] [--threads 2]
"""
import argparse
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402

from adapters.contract import RefinerSettings  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from patches import relational_networks  # noqa: E402
from runners.sort_of_clevr_data import generate  # noqa: E402
from runners.sort_of_clevr_scenes import SortOfClevr  # noqa: E402
from runners.sort_of_clevr_train import batch_tensors, build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--embedding", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")
    torch.set_num_threads(args.threads)
    upstream = relational_networks.checkout()
    split = generate(SortOfClevr(upstream), -(-args.batch // 10), seed=0)
    tensors = batch_tensors(split, "rel", np.arange(args.batch), torch.device("cpu"))
    module = relational_networks.model_module(upstream)
    results = {}
    srn = RefinerSettings("srn", args.steps, 0.1, embedding=args.embedding, seed=0)
    for name, refiner in (("RN", None), (f"RN+SRN ({args.steps} steps)", srn)):
        torch.manual_seed(0)
        model, _ = build_model(module, args.batch, 1e-4, torch.device("cpu"), refiner)
        model.train()
        train = median_seconds(lambda: model.train_(*tensors), args.repeats)
        model.eval()
        with torch.no_grad():
            forward = median_seconds(lambda: model.test_(*tensors), args.repeats)
        results[name] = train
        print(f"{name}: train_ step {train:.3f} s, eval forward {forward:.3f} s (batch {args.batch}, "
              f"{args.threads} threads)")
    base, refined = results.values()
    print(f"the SRN adds {refined - base:.3f} s per step ({refined / base:.2f}x)")


if __name__ == "__main__":
    main()
