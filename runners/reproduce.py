"""Every table of the paper we have, in one command: all four runners with all their
configurations, through the launcher, resuming what is done, and one report beside the
paper's numbers.

    python runners/reproduce.py [--preset auto|paper|smoke] [--device auto|cpu|cuda|cuda:N]
        [--only cswm sort_of_clevr clutrr circles] [--launcher inline|local|slurm] [--jobs N]
        [--jobs-per-gpu K] [--partition P] [--out DIR] [--data-dir DIR] [--clutrr-data ZIP]
        [--configs DIR] [--dry-run]

Parts: C-SWM on Pong and Space Invaders with K = 3 and 5 (Table 3); Sort-of-CLEVR with its
robustness and 0-step ablation (Table 2) and on a cluttered background (appendix D.4);
CLUTRR's RN, SRN and GRN (section 3.3); circles (Table 1; on the paper preset also the SRN
with gradient to S0). Each part is the runner's own command (printed in the report), so its
results folder is the runner's. REPRODUCTION.md under --out has, per table, our mean ± std
beside the paper's, whether ours lies within the paper's mean ± 2 std, Welch's p of the
refiner against the baseline in both (the paper's from its means, stds and trials), and
the command and wall time of each part. --dry-run prints every part's runs instead.

The preset and device are resolved once, as every runner resolves them (``auto``: the paper
preset on a GPU, else smoke; with --launcher slurm the jobs' device follows the presets'
GPUs per job and auto means paper), and handed to every part.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable, Mapping  # noqa: E402

import torch  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from runners import circles, clutrr, clutrr_data, cswm, sort_of_clevr  # noqa: E402
from runners.common.arm_steps import step_cost  # noqa: E402
from runners.registry import RUNNERS, arm_builder, runner_module  # noqa: E402
from runners.common.atomic import atomic_write_text  # noqa: E402
from runners.common.curves import at_steps  # noqa: E402
from runners.common.cli import DATA_DIR, LAUNCHERS, PRESETS, ArgumentParser, main_guard, parse, positive_int  # noqa: E402
from runners.common.errors import UsageError  # noqa: E402
from runners.common.device import CHOICES as DEVICES, device_name, resolve_device  # noqa: E402
from runners.common.paper import PaperTable, Reported, paper_table  # noqa: E402
from runners.common.presets import CONFIG_DIR, resolve_preset  # noqa: E402
from runners.common.results import ResultStore, writable_folder  # noqa: E402
from runners.common.stats import Metric, format_p, mean_std, welch_p  # noqa: E402

@dataclass(frozen=True)
class Column:
    """One compared arm: our ``arm``, its metrics read at ``refiner_steps`` of each run's
    step-count curve when given (the 0-step ablation), and the ``paper_arm`` of the
    published table."""

    arm: str
    paper_arm: str
    refiner_steps: int | None = None

    @property
    def name(self) -> str:
        return self.arm + ("" if self.refiner_steps is None else f" at {self.refiner_steps} steps")

    def value(self, run: dict, key: str) -> float:
        """The metric ``key`` of one run's metrics for this column."""
        return run[key] if self.refiner_steps is None else at_steps(run["steps_curve"], self.refiner_steps)[key]


@dataclass(frozen=True)
class Part:
    """One command of a runner and the published table its runs are compared with on
    ``metrics`` (our keys, scaled to the paper's units), column by column; the first
    column is the reference of the p-values."""

    title: str
    runner: str
    argv: tuple[str, ...]
    table: Callable[[], PaperTable]
    metrics: tuple[Metric, ...]
    columns: tuple[Column, ...]


BASELINE_SRN = (Column("baseline", "baseline"), Column("srn", "srn"))


def parts(preset: str, clutrr_data: str) -> list[Part]:
    """Every part of the reproduction for ``preset``."""
    cswm_parts = [Part(f"C-SWM, {cswm.GAME_NAMES[env]}, K={k} (Table 3)", "cswm", ("--env", env, "--k", str(k), "--srn"),
                       lambda env=env, k=k: paper_table("cswm", "table_3", "games", env, k),
                       tuple(cswm.RANKING_METRICS), BASELINE_SRN)
                  for env in ("pong", "space") for k in (3, 5)]
    questions = tuple(sort_of_clevr.QUESTION_TYPES[:4] + sort_of_clevr.ROBUSTNESS)
    return [
        *cswm_parts,
        Part("Sort-of-CLEVR (Table 2)", "sort_of_clevr", ("--srn",), lambda: paper_table("sort_of_clevr", "table_2"),
             questions, BASELINE_SRN),
        Part("Sort-of-CLEVR, the SRN evaluated with 0 inner steps (section 3.1)", "sort_of_clevr", ("--srn",),
             lambda: paper_table("sort_of_clevr", "zero_step_ablation"), tuple(sort_of_clevr.QUESTION_TYPES[1:4]),
             (Column("srn", "srn"), Column("srn", "srn, 0 steps at test", refiner_steps=0))),
        Part("Sort-of-CLEVR, cluttered background (appendix D.4)", "sort_of_clevr", ("--srn", "--clutter"),
             lambda: paper_table("sort_of_clevr", "clutter"),
             (sort_of_clevr.QUESTION_TYPES[0], sort_of_clevr.QUESTION_TYPES[4]), BASELINE_SRN),
        Part("CLUTRR (section 3.3)", "clutrr", ("--srn", "--grn", "--data", clutrr_data),
             lambda: paper_table("clutrr", "section_3_3"), (clutrr.ACCURACY[-1],),
             (*BASELINE_SRN, Column("grn", "grn"))),
        Part("Circles (Table 1)", "circles", ("--srn", *(("--s0-gradient",) if preset == "paper" else ())),
             lambda: paper_table("circles", "table_1"), tuple(circles.METRICS[:5]), BASELINE_SRN),
    ]


def plan_of(part: Part, argv: list[str]) -> dict:
    """The runner's --dry-run plan of ``argv``."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        runner_module(part.runner).main([*argv, "--dry-run"])
    return json.loads(printed.getvalue())


def within(ours: float, paper: Reported) -> str:
    if paper.std is None:
        return "n/a"
    return "yes" if abs(ours - paper.mean) <= 2 * paper.std else "no"


def paper_p(table: PaperTable, refiner: str, baseline: str, key: str) -> str:
    """Welch's p of the paper's refiner vs baseline from their means, stds and trials."""
    a, b = table.arms.get(refiner, {}).get(key), table.arms.get(baseline, {}).get(key)
    if a is None or b is None or a.std is None or b.std is None or not table.trials or (a.std == b.std == 0):
        return "n/a"
    test = scipy_stats.ttest_ind_from_stats(a.mean, a.std, table.trials, b.mean, b.std, table.trials, equal_var=False)
    return format_p(float(test.pvalue))


def part_report(part: Part, plan: dict, store: ResultStore, command: str, seconds: float | None, preset: str) -> str:
    """The Markdown section of one part: ours beside the paper's, per metric and arm."""
    table = part.table()
    seeds = range(len(plan["seeds"]))
    columns = [column for column in part.columns if column.arm in plan["arms"]]
    finished = store.table({column.arm: plan["arms"][column.arm] for column in columns}, seeds)
    runs = {column: finished[column.arm] for column in columns}
    reference, others = columns[0], columns[1:]
    header = ["metric"]
    for column in columns:
        header += [f"ours: {column.name} (n={len(runs[column])})", f"paper: {column.paper_arm}", "within 2 std"]
    header += [f"p, {column.name} vs {reference.name}: ours / paper" for column in others]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in part.metrics:
        row = [metric.label]
        values = {column: [column.value(run, metric.key) for run in runs[column]] for column in columns}
        for column, arm_values in values.items():
            published = table.arms.get(column.paper_arm, {}).get(metric.key)
            if arm_values:
                mean, std = mean_std([value * metric.scale for value in arm_values])
                row.append(f"{mean:.{metric.digits}f} ± {std:.{metric.digits}f}")
            else:
                mean = None
                row.append("-")
            row += ["-" if published is None else published.text(metric.digits),
                    "-" if published is None or mean is None else within(mean, published)]
        for column in others:
            row.append(f"{format_p(welch_p(values[column], values[reference]))} / "
                       f"{paper_p(table, column.paper_arm, reference.paper_arm, metric.key)}")
        lines.append("| " + " | ".join(row) + " |")
    took = "not run (all runs were done)" if seconds is None else f"{seconds / 60:.1f} min"
    comparable = "" if preset == "paper" else (f" Preset {preset}: not comparable with the paper (its settings are the "
                                               "paper preset's); the columns show what the path computes.")
    return "\n".join([f"## {part.title}", "", f"`{command}` ({took}); paper: {table.citation}.{comparable}", "",
                      *lines, ""])


def arm_cost(arm: str, measured: Mapping[str, float]) -> float:
    """The measured cost of ``arm``, or of the measured arm its name extends
    ("srn-s0-gradient" -> "srn")."""
    if arm in measured:
        return measured[arm]
    return measured[max((name for name in measured if arm.startswith(name)), key=len)]


def forecast_seconds(plan: dict, epoch_seconds: Mapping[str, float], pending_only: bool = True) -> float:
    """Seconds of training steps of a runner's --dry-run ``plan`` (its runs still to do, or
    all): each run's epochs at the measured ``epoch_seconds`` of its arm."""
    runs = [run for run in plan["runs"] if not (pending_only and run["done"])]
    return sum(plan["settings"]["epochs"] * arm_cost(run["arm"], epoch_seconds) for run in runs)


def epoch_seconds(runner: str, preset: str, device: list[str], args) -> tuple[dict[str, float], str] | None:
    """Seconds of one training epoch of each arm of ``runner`` on this command's device: from
    a full-size gpu_check report of this device and preset (--gpu-check), else measured
    here, one training step of each arm (after a warm-up, runners.common.arm_steps.step_cost)
    times its batches per epoch; None where no report has them and measuring would touch a
    GPU from a process that only launches jobs (--launcher local or slurm: only runs touch
    CUDA). Returns them with where they come from."""
    if args.gpu_check.exists():
        report = json.loads(args.gpu_check.read_text())
        here = None if not device else device_name(torch.device(device[1]))
        if (report["scale"], report["preset"]) == ("full", preset) and runner in report["runners"] and (
                not device or report["device_name"] == here):
            return ({arm: cost["seconds_per_epoch"] for arm, cost in report["runners"][runner]["cost"].items()},
                    f"the gpu_check report {args.gpu_check} ({report['device_name']})")
    if not device or (device[1] != "cpu" and args.launcher != "inline"):
        return None
    arms = arm_builder(runner)(preset, torch.device(device[1]), args.data_dir, args.clutrr_data,
                            config=args.configs / f"{runner}.yaml")
    measured = {name: step_cost(arm, 1, torch.device(device[1]))["seconds_per_step"] * arm.batches_per_epoch
                for name, arm in arms.items()}
    return measured, f"one training step per arm measured here on {device[1]}"


def print_forecast(chosen: list[Part], plans: dict, commands: dict, preset: str, device: list[str], args) -> None:
    """Each part's forecast wall time of training steps (not data generation or evaluation),
    one run at a time, before anything is trained."""
    costs, lines, total = {}, [], 0.0
    for part in chosen:
        if part.runner not in costs:
            costs[part.runner] = epoch_seconds(part.runner, preset, device, args)
        plan, cost = plans[part.title], costs[part.runner]
        if commands[part.title] in (line[0] for line in lines):
            continue
        if cost is None:
            lines.append((commands[part.title], f"{part.title}: {plan['to_run']} run(s) to do, no forecast (run "
                                                f"benchmarks/gpu_check.py where the jobs run for one)"))
            continue
        seconds = forecast_seconds(plan, cost[0])
        total += seconds
        lines.append((commands[part.title], f"{part.title}: {plan['to_run']} run(s) to do, about "
                                            f"{format_duration(seconds)} ({cost[1]})"))
    print("forecast, training steps one run at a time (not data generation or evaluation):")
    print("\n".join(f"  {text}" for _, text in lines) + f"\n  in all: about {format_duration(total)}", flush=True)


def format_duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def preset_and_device(args) -> tuple[str, list[str]]:
    """The preset of every part and its --device flags, resolved once here (so a laptop hears
    "device auto -> cpu" once, not from every part): auto -> paper on a GPU, else smoke.
    With --launcher slurm the parts leave the device to the jobs' resources and auto is paper."""
    if args.launcher == "slurm":
        if args.device != "auto":
            raise UsageError(f"--device {args.device}: with --launcher slurm the jobs' device follows the "
                             "presets' GPUs per job: leave --device out")
        return resolve_preset(args.preset, True, why="--launcher slurm"), []
    device = resolve_device(args.device)
    return resolve_preset(args.preset, device.type == "cuda"), ["--device", str(device)]


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="runners/reproduce.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="auto",
                        help="auto (default): paper on a GPU, else smoke (slurm: paper); tiny: every path in seconds")
    parser.add_argument("--device", default="auto", help=f"{DEVICES} (not with --launcher slurm)")
    parser.add_argument("--only", nargs="+", choices=list(RUNNERS), default=list(RUNNERS))
    parser.add_argument("--launcher", choices=LAUNCHERS, default="inline")
    parser.add_argument("--jobs", type=positive_int, default=None)
    parser.add_argument("--jobs-per-gpu", type=positive_int, default=None, help="local on GPUs: runs sharing a GPU")
    parser.add_argument("--partition", default=None, help="slurm: the partition")
    parser.add_argument("--out", type=Path, default=Path("results"), help="the runners' results folders go under it")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--clutrr-data", default=clutrr_data.PUBLIC_COPY, help="data_db9b8f04.zip, its folder or URL")
    parser.add_argument("--configs", type=Path, default=CONFIG_DIR, help="the runners' presets files (<runner>.yaml)")
    parser.add_argument("--gpu-check", type=Path, default=Path("results") / "gpu_check" / "gpu_check.json",
                        help="benchmarks/gpu_check.py's report, for the forecast (default: its default output)")
    parser.add_argument("--dry-run", action="store_true", help="print every part's runs as JSON, then exit")
    args = parse(parser, argv)
    preset, device = preset_and_device(args)
    launch = ["--launcher", args.launcher] + (["--jobs", str(args.jobs)] if args.jobs else []) + \
        (["--jobs-per-gpu", str(args.jobs_per_gpu)] if args.jobs_per_gpu else []) + \
        (["--partition", args.partition] if args.partition else [])
    chosen = [part for part in parts(preset, args.clutrr_data) if part.runner in args.only]
    report = [f"# Reproduction: preset {preset}", ""]
    plans, timings, argvs, commands = {}, {}, {}, {}
    for part in chosen:
        runner_argv = [*part.argv, "--preset", preset, *device, "--out", str(args.out / part.runner),
                       "--data-dir", str(args.data_dir)]
        if args.configs != CONFIG_DIR:
            runner_argv += ["--config", str(args.configs / f"{part.runner}.yaml")]
        argvs[part.title] = [*runner_argv, *launch]
        commands[part.title] = f"python runners/{part.runner}.py " + shlex.join(argvs[part.title])
        plans[part.title] = plan_of(part, argvs[part.title])
    if args.dry_run:
        print(json.dumps({title: {"command": commands[title], **plan} for title, plan in plans.items()}, indent=1))
        return
    print_forecast(chosen, plans, commands, preset, device, args)
    start = time.perf_counter()
    done_commands: dict[str, float | None] = {}
    for part in chosen:
        command = commands[part.title]
        if command not in done_commands:  # parts that share a command (Sort-of-CLEVR's) run it once
            plan = plans[part.title]
            if plan["to_run"]:
                began = time.perf_counter()
                print(f"\n=== {part.title}: {command}", flush=True)
                runner_module(part.runner).main(argvs[part.title])
                done_commands[command] = time.perf_counter() - began
            else:
                done_commands[command] = None
        timings[part.title] = done_commands[command]
    for part in chosen:
        plan = plans[part.title]
        store = ResultStore(Path(plan["results"]).parent, create=False)
        report.append(part_report(part, plan, store, commands[part.title], timings[part.title], preset))
    report.insert(2, f"Wall time of this command: {(time.perf_counter() - start) / 60:.1f} min.\n")
    out = writable_folder(args.out, "results", "--out") / "REPRODUCTION.md"
    atomic_write_text(out, "\n".join(report))
    print("\n".join(report))
    print(f"saved {out}")


if __name__ == "__main__":
    clutrr.with_fixed_hash_seed()
    main_guard(main)
