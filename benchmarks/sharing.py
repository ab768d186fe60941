"""Steady-state throughput of 1, 2 and 4 runs sharing one device: how many jobs per GPU pay.

Each run is a separate process (as the launcher's jobs are) that builds a runner's first
refiner arm as its runner builds it (``runners.common.arm_steps``), with its refiner loop captured where
``--compile auto`` captures it (on a GPU), takes warm-up steps (compilation and CUDA-graph
recording included), and waits until every run sharing the device is ready; then all train
for the same ``seconds`` and count their steps. Start-up never counts, so the ratio of the
summed steps per second to one run's is what sharing buys once runs are under way.

    throughput(runner, preset, device, data_dir, clutrr_source, batch_size, train_size,
               counts=(1, 2, 4), seconds=10.0) -> {"steps_per_second": {n: ...}, "speedup": {n: ...}}

A run's own process: ``python -m benchmarks.sharing RUNNER --device ... --ready FILE --go FILE``
prints {"steps": n, "seconds": s}.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from runners.common.arm_steps import synchronise  # noqa: E402
from runners.common.seeding import available_cores  # noqa: E402
from runners.registry import arm_builder  # noqa: E402

WARMUP_STEPS = 3  # CUDA graphs: a warm-up call, the recording, then replays
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def throughput(runner: str, preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
               batch_size: int | None, train_size: int | None, counts: tuple[int, ...] = (1, 2, 4),
               seconds: float = 10.0, timeout: float = 300.0) -> dict:
    """Steps per second of ``n`` runs at once on ``device``, summed over the runs, for each
    ``n`` in ``counts``, and each ``n``'s speed-up over one run (see the module docstring).
    On the CPU the runs split the cores between them."""
    rates, cores = {}, available_cores()
    for count in counts:
        with tempfile.TemporaryDirectory() as folder:
            go = Path(folder) / "go"
            argv = [runner, "--preset", preset, "--device", str(device), "--data-dir", str(data_dir),
                    "--seconds", str(seconds), "--go", str(go), "--threads", str(max(1, cores // count))]
            argv += ["--clutrr-data", clutrr_source] if clutrr_source else []
            argv += ["--batch-size", str(batch_size)] if batch_size else []
            argv += ["--train-size", str(train_size)] if train_size else []
            ready = [Path(folder) / f"{index}.ready" for index in range(count)]
            logs = [open(Path(folder) / f"{index}.log", "w+") for index in range(count)]
            runs = [subprocess.Popen([sys.executable, "-m", "benchmarks.sharing", *argv, "--ready", str(path)],
                                     cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
                    for path, log in zip(ready, logs)]
            try:
                deadline = time.monotonic() + timeout
                while not all(path.exists() for path in ready):
                    failed = [index for index, run in enumerate(runs) if run.poll() not in (None, 0)]
                    if failed or time.monotonic() > deadline:
                        last = Path(logs[failed[0]].name).read_text().strip().splitlines()[-1:] if failed else []
                        raise RuntimeError(f"a {runner} run sharing the device did not start: "
                                           f"{last[0] if last else 'timed out'}")
                    time.sleep(0.05)
                go.touch()
                outputs = [run.communicate(timeout=timeout)[0] for run in runs]
            finally:
                for run, log in zip(runs, logs):
                    run.kill()
                    log.close()
        counted = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
        rates[count] = sum(run["steps"] / run["seconds"] for run in counted)
    return {"steps_per_second": rates, "speedup": {count: rate / rates[counts[0]] for count, rate in rates.items()},
            "seconds": seconds}


def run(args: argparse.Namespace) -> dict:
    """One run sharing the device: build, warm up, say ready, wait for go, train for
    ``args.seconds`` -> {"steps": ..., "seconds": ...}."""
    from runners.common.device import resolve_device, use_device
    from runners.common.invocation import BASELINE
    from srn import capture

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    use_device(device)
    arms = arm_builder(args.runner)(args.preset, device, args.data_dir, args.clutrr_data, batch_size=args.batch_size,
                                    train_size=args.train_size)
    arm = next(arm for name, arm in arms.items() if name != BASELINE)
    with capture.capturing(device if device.type == "cuda" else None):
        for _ in range(WARMUP_STEPS):
            arm.train_step()
        synchronise(device)
        args.ready.touch()
        while not args.go.exists():
            time.sleep(0.01)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            arm.train_step()
            steps += 1
        synchronise(device)
    return {"steps": steps, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description="one run sharing the device (benchmarks.sharing.throughput)")
    parser.add_argument("runner")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--clutrr-data", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--go", type=Path, required=True)
    print(json.dumps(run(parser.parse_args())))


if __name__ == "__main__":
    main()
