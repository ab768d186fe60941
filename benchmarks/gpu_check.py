"""Before the paper runs: the one command to run on a fresh GPU machine before spending days
of GPU time on it. For each of the four runners, with the paper preset's widths and batch
size, one seed and a short budget, it measures in a few minutes:

* cost: each arm's seconds per training step and per epoch on this device, its ratio to the
  baseline (beside appendix G's) and its peak GPU memory; each refiner arm's again with its
  inner loop captured (``--compile on``: CUDA graphs, ``srn.capture``);
* agreement: a bitwise rerun of the refiner arm (``rerun_identical``); each refiner arm with
  0 inner steps computing the baseline's output, loss and gradients bit for bit
  (``zero_steps_equal_baseline``); the
  runner's own command, shortened, giving the same numbers inline and with ``--launcher
  local`` two jobs at once (``launcher_local_equals_inline``; on a GPU ``--jobs-per-gpu
  2``); the calls of kernels without a deterministic implementation;
* sharing (``sharing``): the steady-state throughput of 1, 2 and 4 runs of the refiner arm
  sharing the device (``benchmarks.sharing``: start-up excluded);
* forecast (``forecast_hours``): each paper table's wall time on this device, epochs x seeds
  x arms x the measured epoch time (training steps only), one job at a time and with the
  jobs per GPU that the sharing measurement found fastest among those memory allows.

    python benchmarks/gpu_check.py --device cuda[:N] [--out DIR] [--clutrr-data ZIP]
        [--data-dir DIR] [--only cswm sort_of_clevr clutrr circles] [--tiny]

It writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out`` and prints the Markdown;
exit code 1 when an agreement check fails. ``--tiny --device cpu`` runs the same checks at
tiny sizes on a CPU in a few minutes (the tiny presets, batch 4; its forecast only
exercises the arithmetic).
"""
import contextlib
import math
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import json  # noqa: E402

import torch  # noqa: E402
import yaml  # noqa: E402

from benchmarks import sharing  # noqa: E402
from benchmarks.refiner_overhead import PAPER_OVERHEAD  # noqa: E402
from refiners.registry import KINDS  # noqa: E402
from runners.common.arm_steps import ArmSteps, step_cost, upstream_parameters  # noqa: E402
from runners import clutrr, clutrr_data, reproduce  # noqa: E402
from runners.common.atomic import atomic_write_text  # noqa: E402
from runners.common.cli import DATA_DIR, ArgumentParser, main_guard, parse  # noqa: E402
from runners.common.errors import UsageError  # noqa: E402
from runners.common.device import device_name, resolve_device, use_device  # noqa: E402
from runners.common.invocation import BASELINE  # noqa: E402
from runners.common.presets import CONFIG_DIR, load_preset  # noqa: E402
from runners.common.results import writable_folder  # noqa: E402
from runners.common.seeding import available_cores, counting_nondeterminism  # noqa: E402
from runners.cswm_data import TRANSITIONS_PER_EPISODE  # noqa: E402
from runners.registry import RUNNERS, arm_builder, runner_module  # noqa: E402
from srn import capture  # noqa: E402

MEMORY_HEADROOM = 0.9  # of the GPU's memory that jobs sharing it may fill


@dataclass(frozen=True)
class Scale:
    """How big the check is. preset: whose widths and batch size (full: paper; tiny: tiny);
    batch_size: None for the preset's; timed_steps: training steps timed per arm (after one
    warm-up); compared_steps: steps of the bitwise comparisons; train_sizes: per runner, the
    training set its arms are built on instead of the preset's, in the runner's unit (C-SWM:
    episodes, at least one batch; CLUTRR: stories, whose processing takes most of a build);
    short: per runner, the preset's
    settings that the shortened command of the launcher check replaces, and its flags;
    sharing: the counts of runs sharing the device whose throughput is measured, and how
    long they train (after their start-up)."""

    name: str
    preset: str
    batch_size: int | None
    timed_steps: int
    compared_steps: int
    train_sizes: dict
    short: dict
    sharing: tuple[tuple[int, ...], float]


FULL = Scale("full", "paper", None, 100, 3, {"cswm": 110, "clutrr": 2000}, {
    "cswm": {"train_episodes": 110, "eval_episodes": 100, "epochs": 1, "seeds": 1},
    "sort_of_clevr": {"train_images": 100, "validation_images": 20, "test_images": 20, "epochs": 1,
                      "synthetic_positions": 2, "dataset_images": 2, "rotations": 4, "seeds": 1},
    "clutrr": {"train_rows": 400, "epochs": 1, "seeds": 1},
    "circles": {"train_images": 640, "test_images": 200, "epochs": 1, "seeds": 1},
}, sharing=((1, 2, 4), 10.0))
TINY = Scale("tiny", "tiny", 4, 2, 2, {}, {
    "cswm": {"epochs": 1, "seeds": 1}, "sort_of_clevr": {"seeds": 1}, "clutrr": {"seeds": 1}, "circles": {"seeds": 1},
}, sharing=((1, 2), 2.0))


def trained(arm: ArmSteps, steps: int) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """The losses of ``steps`` training steps and the parameters afterwards (on the CPU)."""
    losses = [arm.train_step().detach().cpu() for _ in range(steps)]
    return losses, {name: parameter.detach().cpu() for name, parameter in arm.model.named_parameters()}


def bitwise_equal(first: tuple, second: tuple) -> bool:
    """Whether two ``trained`` results have the same losses and parameters, bit for bit."""
    (losses_a, parameters_a), (losses_b, parameters_b) = first, second
    return (parameters_a.keys() == parameters_b.keys()
            and all(torch.equal(a, b) for a, b in zip(losses_a, losses_b, strict=True))
            and all(torch.equal(parameters_a[name], parameters_b[name]) for name in parameters_a))


def first_step(runner: str, arm: ArmSteps) -> tuple:
    """A freshly built arm's evaluation output, first training loss and the gradient of each
    upstream parameter it trains (None for those it leaves frozen), in the baseline's order."""
    output = arm.eval_step().cpu()
    loss = arm.train_step().cpu()
    gradients = [None if name in arm.frozen else "missing" if parameter.grad is None else parameter.grad.cpu()
                 for name, parameter in upstream_parameters(arm)]
    return output, loss, gradients


def same_first_step(baseline: tuple, refined: tuple) -> bool:
    """Whether a 0-step refiner arm computed the baseline's function (``first_step``s): the
    same output and loss, and the same gradient for every upstream parameter it trains
    (circles' paper preset detaches S0, so its G trains in the baseline only; CLUTRR's GRN
    has its own l2 penalty, so only the first step's gradients can be compared), bit for bit."""
    (output, loss, gradients), (refined_output, refined_loss, refined_gradients) = baseline, refined
    return (torch.equal(output, refined_output) and torch.equal(loss, refined_loss)
            and len(gradients) == len(refined_gradients)
            and all(mine is None or (isinstance(mine, torch.Tensor) and isinstance(theirs, torch.Tensor)
                                     and torch.equal(mine, theirs)) for theirs, mine in zip(gradients, refined_gradients)))


def short_config(runner: str, scale: Scale, folder: Path) -> Path:
    """configs/<runner>.yaml with the scale's preset shortened (scale.short), written into ``folder``."""
    presets = yaml.safe_load((CONFIG_DIR / f"{runner}.yaml").read_text())
    preset = dict(presets[scale.preset])
    changes = dict(scale.short[runner])
    refiner = changes.pop("refiner", None)
    preset.update(changes)
    if refiner:
        preset["refiner"] = {kind: {**(preset.get("refiner") or {}).get(kind, {}), **values}
                             for kind, values in refiner.items()}
    presets[scale.preset] = preset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{runner}.yaml"
    path.write_text(yaml.safe_dump(presets))
    return path


def finished_numbers(out: Path) -> dict:
    """run key -> its metrics without wall times, from the results.json under ``out``."""
    [results] = out.glob("**/results.json")
    return {key: {name: value for name, value in run["metrics"].items() if not name.endswith("seconds")}
            for key, run in json.loads(results.read_text())["runs"].items()}


def arm_flags(runner: str, preset: str) -> list[str]:
    """The flags of the runner's main table and of every refiner arm ``preset`` offers (the
    arms ``build_arms`` builds)."""
    offered = load_preset(CONFIG_DIR / f"{runner}.yaml", preset).get("refiner") or {}
    return [*runner_module(runner).EXPERIMENT.table_flags, *(KINDS[kind].flag for kind in offered)]


def launcher_check(runner: str, scale: Scale, device: torch.device, folder: Path, data_dir: Path,
                   clutrr_source: str) -> dict:
    """The runner's own command, shortened, inline and with two local jobs at once (two per
    GPU on a GPU), on the same threads per run: whether every run's numbers are equal."""
    config = short_config(runner, scale, folder)
    threads = max(1, available_cores() // 2)
    argv = [*arm_flags(runner, scale.preset), "--preset", scale.preset, "--config", str(config), "--device", str(device),
            "--threads", str(threads), "--data-dir", str(data_dir)]
    if runner == "clutrr":
        argv += ["--data", clutrr_source]
    two_at_once = ["--launcher", "local"] + (["--jobs-per-gpu", "2"] if device.type == "cuda" else ["--jobs", "2"])
    for name, launch in (("inline", []), ("local", two_at_once)):
        with open(folder / f"{name}.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            runner_module(runner).main([*argv, "--out", str(folder / name), *launch])
    inline, local = finished_numbers(folder / "inline"), finished_numbers(folder / "local")
    return {"launcher_local_equals_inline": inline == local, "runs": len(inline)}


def preset_batches_per_epoch(runner: str, arm: ArmSteps, scale: Scale) -> int:
    """Training steps in one epoch of the preset's own training set, where the arms were
    built on a smaller one: C-SWM's exactly (10 transitions per episode, the last batch
    partial), CLUTRR's in proportion to the stories (within a batch)."""
    if runner not in scale.train_sizes:
        return arm.batches_per_epoch
    preset = load_preset(CONFIG_DIR / f"{runner}.yaml", scale.preset)
    if runner == "cswm":
        return math.ceil(preset["train_episodes"] * TRANSITIONS_PER_EPISODE / (scale.batch_size or preset["batch_size"]))
    stories = preset["train_rows"] or clutrr_data.TRAIN_STORIES
    return round(arm.batches_per_epoch * stories / scale.train_sizes[runner])


def check_runner(runner: str, scale: Scale, device: torch.device, folder: Path, data_dir: Path,
                 clutrr_source: str) -> dict:
    """Cost and agreement of one runner's arms (see the module docstring)."""
    def build(**options) -> dict[str, ArmSteps]:
        return arm_builder(runner)(scale.preset, device, data_dir, clutrr_source, batch_size=scale.batch_size,
                                train_size=scale.train_sizes.get(runner), **options)

    with counting_nondeterminism() as nondeterministic:
        first, again, zero = build(), build(), build(refiner_steps=0)
        refiners = [name for name in first if name != BASELINE]
        checked = refiners[0]
        rerun_identical = bitwise_equal(trained(first[checked], scale.compared_steps),
                                        trained(again[checked], scale.compared_steps))
        reference = first_step(runner, zero[BASELINE])
        zero_steps = {kind: same_first_step(reference, first_step(runner, zero[kind])) for kind in refiners}
        del again, zero  # free their GPU memory before the timing
        cost = {name: step_cost(arm, scale.timed_steps, device) for name, arm in first.items()}
        for name in refiners:
            cost[name]["captured"] = captured_cost(first[name], scale.timed_steps, device)
    for name, arm in first.items():
        cost[name]["batches_per_epoch"] = preset_batches_per_epoch(runner, arm, scale)
        cost[name]["seconds_per_epoch"] = cost[name]["seconds_per_step"] * cost[name]["batches_per_epoch"]
        cost[name]["x_baseline"] = cost[name]["seconds_per_step"] / cost[BASELINE]["seconds_per_step"]
        cost[name]["paper_appendix_g"] = None if name == BASELINE else PAPER_OVERHEAD[runner]
        captured = cost[name].get("captured")
        if captured:
            captured["x_baseline"] = captured["seconds_per_step"] / cost[BASELINE]["seconds_per_step"]
    del first
    with counting_nondeterminism() as launched:
        launcher = launcher_check(runner, scale, device, folder, data_dir, clutrr_source)
    agreement = {"rerun_identical": rerun_identical, "rerun_arm": checked, "zero_steps_equal_baseline": zero_steps,
                 **launcher, "nondeterministic_kernel_calls": len(nondeterministic) + len(launched)}
    counts, seconds = scale.sharing
    shared = sharing.throughput(runner, scale.preset, device, data_dir, clutrr_source, scale.batch_size,
                                scale.train_sizes.get(runner), counts, seconds)
    return {"cost": cost, "agreement": agreement, "sharing": shared}


def captured_cost(arm: ArmSteps, steps: int, device: torch.device) -> dict | None:
    """``step_cost`` of ``arm`` with its refiner loop captured (after the warm-up steps that
    compile it and record its CUDA graphs); None where this torch cannot capture."""
    try:
        capture.check_available(device)
    except capture.CaptureUnavailable:
        return None
    with capture.capturing(device):
        for _ in range(sharing.WARMUP_STEPS - 1):
            arm.train_step()
        return step_cost(arm, steps, device)


def jobs_per_gpu(cost: dict, device: torch.device) -> int:
    """How many runs of the hungriest arm fit in this GPU's memory at once (1 on a CPU)."""
    peaks = [arm["peak_memory_gb"] for arm in cost.values() if arm["peak_memory_gb"]]
    if device.type != "cuda" or not peaks:
        return 1
    total = torch.cuda.get_device_properties(device).total_memory / 2 ** 30
    return max(1, int(MEMORY_HEADROOM * total // max(peaks)))


def best_sharing(speedup: dict, fits: int) -> tuple[int, float]:
    """The jobs per GPU with the highest measured throughput among those memory allows, and
    its speed-up (``speedup``: jobs -> throughput over one job's; (1, 1.0) when none beats
    one job)."""
    allowed = {int(jobs): value for jobs, value in speedup.items() if int(jobs) <= fits} | {1: 1.0}
    jobs = max(allowed, key=lambda count: (allowed[count], -count))
    return jobs, allowed[jobs]


def forecast(runner: str, result: dict, device: torch.device, clutrr_source: str) -> dict:
    """Each paper table of ``runner`` (runners/reproduce.py's parts of the paper preset):
    hours for epochs x seeds x arms at the measured epoch times, one job at a time, and
    with the jobs per GPU that ``best_sharing`` advises (at its measured speed-up; None
    where one job at a time is best)."""
    epoch = {name: arm["seconds_per_epoch"] for name, arm in result["cost"].items()}
    fits = jobs_per_gpu(result["cost"], device)
    jobs, speedup = best_sharing(result["sharing"]["speedup"], fits)
    shared_pays = jobs > 1
    tables, commands = {}, set()
    for part in reproduce.parts("paper", clutrr_source):
        if part.runner != runner:
            continue
        argv = [*part.argv, "--preset", "paper", "--device", "cpu"]
        if tuple(argv) in commands:  # Sort-of-CLEVR's table 2 and 0-step ablation: one command
            continue
        commands.add(tuple(argv))
        plan = reproduce.plan_of(part, argv)
        seconds = reproduce.forecast_seconds(plan, epoch, pending_only=False)
        tables[part.title] = {"runs": len(plan["runs"]), "epochs": plan["settings"]["epochs"], "one_job": seconds / 3600,
                              "shared": seconds / speedup / 3600 if shared_pays else None}
    return {"tables": tables, "jobs_per_gpu_memory_allows": fits, "jobs_per_gpu_advised": jobs,
            "total_one_job": sum(table["one_job"] for table in tables.values()),
            "total_shared": sum(table["shared"] for table in tables.values()) if shared_pays else None}


def markdown(report: dict) -> str:
    lines = [f"# GPU check: {report['device_name']} ({report['device']}), torch {report['torch']}, "
             f"{report['scale']} scale, preset {report['preset']}", "",
             f"Took {report['seconds'] / 60:.1f} min. Command: `{report['command']}`", "",
             "## Cost per training step (training steps only; one synchronisation per timed block)", "",
             "| runner | arm | s/step | s/epoch | x baseline | captured s/step | captured x baseline "
             "| paper (appendix G) | peak GPU memory (GB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for runner, result in report["runners"].items():
        for arm, cost in result["cost"].items():
            peak = "-" if cost["peak_memory_gb"] is None else f"{cost['peak_memory_gb']:.2f}"
            captured = cost.get("captured")
            captured_text = (f"{captured['seconds_per_step']:.4f} | {captured['x_baseline']:.2f}" if captured
                             else "- | -")
            lines.append(f"| {runner} | {arm} | {cost['seconds_per_step']:.4f} | {cost['seconds_per_epoch']:.1f} | "
                         f"{cost['x_baseline']:.2f} | {captured_text} | {cost['paper_appendix_g'] or ''} | {peak} |")
    lines += ["", "## Agreement", "",
              "| runner | rerun identical | 0 steps = baseline | local 2 at once = inline | "
              "nondeterministic kernel calls |", "|---|---|---|---|---|"]
    for runner, result in report["runners"].items():
        agreement = result["agreement"]
        zero = ", ".join(f"{kind}: {'yes' if equal else 'NO'}" for kind, equal in
                         agreement["zero_steps_equal_baseline"].items())
        lines.append(f"| {runner} | {'yes' if agreement['rerun_identical'] else 'NO'} ({agreement['rerun_arm']}) | "
                     f"{zero} | {'yes' if agreement['launcher_local_equals_inline'] else 'NO'} "
                     f"({agreement['runs']} runs) | {agreement['nondeterministic_kernel_calls']} |")
    lines += ["", "## Runs sharing the device (the refiner arm, steady state, start-up excluded)", "",
              "| runner | jobs | steps/s, all jobs | x one job | seconds measured |", "|---|---|---|---|---|"]
    for runner, result in report["runners"].items():
        shared = result["sharing"]
        for jobs, rate in shared["steps_per_second"].items():
            lines.append(f"| {runner} | {jobs} | {rate:.2f} | {shared['speedup'][jobs]:.2f} | {shared['seconds']:g} |")
    lines += ["", "## Forecast of the paper tables on this device (hours of training steps)", "",
              "| table | runs | epochs | one job at a time | jobs per GPU advised | hours with them |",
              "|---|---|---|---|---|---|"]
    for result in report["runners"].values():
        hours = result["forecast_hours"]
        for title, table in hours["tables"].items():
            shared = "-" if table["shared"] is None else f"{table['shared']:.1f}"
            lines.append(f"| {title} | {table['runs']} | {table['epochs']} | {table['one_job']:.1f} | "
                         f"{hours['jobs_per_gpu_advised']} | {shared} |")
    lines += ["", "Jobs per GPU advised: the count with the highest steady-state throughput among those the GPU's "
              "memory holds (`--launcher local --jobs-per-gpu K`); \"-\" where one job at a time is best."]
    if report["scale"] == "tiny":
        lines += ["", "Tiny scale: the sizes are not the paper's, so the cost and forecast only exercise the check."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (--tiny: also cpu)")
    parser.add_argument("--out", type=Path, default=Path("results") / "gpu_check")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--clutrr-data", default=clutrr_data.PUBLIC_COPY, help="data_db9b8f04.zip, its folder or URL")
    parser.add_argument("--only", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, e.g. on a CPU: checks the check")
    args = parse(parser, argv)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")  # the RN's; dim=1 is meant
    device = resolve_device(args.device)
    if device.type != "cuda" and not args.tiny:
        raise UsageError(f"--device {args.device}: the full check measures a GPU; add --tiny to check the check on a "
                         "CPU")
    scale = TINY if args.tiny else FULL
    out = writable_folder(args.out, "results", "--out")
    use_device(device)
    start = time.perf_counter()
    report = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__, "scale": scale.name, "preset": scale.preset,
              "command": "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "runners": {}}
    for runner in args.only:
        print(f"checking {runner} ...", file=sys.stderr, flush=True)
        folder = out / "runs" / runner  # the launcher check's commands, their results and logs: fresh each time
        shutil.rmtree(folder, ignore_errors=True)
        result = check_runner(runner, scale, device, folder, args.data_dir, args.clutrr_data)
        result["forecast_hours"] = forecast(runner, result, device, args.clutrr_data)
        report["runners"][runner] = result
        report["seconds"] = time.perf_counter() - start
        atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=1) + "\n")  # after each runner: a
        text = markdown(report)  # check stopped partway keeps the runners it finished
        atomic_write_text(out / "gpu_check.md", text)
    print(text)
    print(f"saved {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    failed = [runner for runner, result in report["runners"].items() if not agreed(result["agreement"])]
    if failed:
        print(f"error: agreement failed for {', '.join(failed)} (see the table)", file=sys.stderr)
        sys.exit(1)


def agreed(agreement: dict) -> bool:
    return (agreement["rerun_identical"] and all(agreement["zero_steps_equal_baseline"].values())
            and agreement["launcher_local_equals_inline"])


if __name__ == "__main__":
    clutrr.with_fixed_hash_seed()
    main_guard(main)
