"""Command-line conventions of every runner: one-line errors with exit code 2."""
import argparse
import sys
from pathlib import Path
from dataclasses import fields
from types import UnionType
from typing import Annotated, Any, Callable, NoReturn, Union, get_args, get_origin, get_type_hints

from patches.vendor import PROJECT_ROOT, UpstreamError
from refiners.registry import KINDS
from runners.common.errors import JobsFailed, UsageError
from srn import InnerLossNotFinite, InputNotFinite
from declared.settings import Count, Index, NonNegative, OneOf, value_problem

PRESETS = ("tiny", "smoke", "paper", "auto")  # every runner's presets file has tiny, smoke and paper
EXIT_JOBS_FAILED = 1  # some jobs of a launcher failed: the others' runs are saved
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3  # training diverged: a refiner's input, inner loss or result became NaN or infinite
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise UsageError (one line, exit code 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser``'s arguments from ``argv`` (None: the command line), keeping ``argv`` as
    ``args.argv``: a launcher's jobs are the same command, each narrowed to one run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def job_name(text: str) -> tuple[str, int]:
    """"srn:3" -> ("srn", 3): the (arm, seed) of one job."""
    arm, _, seed = text.rpartition(":")
    if not arm:
        raise argparse.ArgumentTypeError(f"expected ARM:SEED, got {text!r}")
    return arm, non_negative_int(seed)


def declared(declared_type: Any) -> Callable[[str], Any]:
    """The argparse type of a flag whose values are those of ``declared_type`` (an
    ``Annotated[int | float, Range(...)]`` of ``declared.settings``, or an ``Annotated`` type
    whose rule reads its own text with ``parse``, e.g. ``refiners.schedule.Schedule``): the
    flag is checked by the same declaration as the setting it overrides."""
    base, *rules = get_args(declared_type)
    reader = next((rule.parse for rule in rules if hasattr(rule, "parse")), base)

    def parse(text: str):
        try:
            value = reader(text)
        except ValueError as error:
            expected = {int: "an integer", float: "a number"}.get(base)
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}" if expected else str(error)) from None
        problem = value_problem(declared_type, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


positive_int = declared(Count)
non_negative_int = declared(Index)
non_negative_float = declared(NonNegative)


def flag_of(name: str) -> str:
    """The flag of a setting or kind: "inner_lr" -> "--inner-lr"."""
    return "--" + name.replace("_", "-")


def dest_of(name: str) -> str:
    """argparse's attribute for a flag's name: "slot-attention" -> "slot_attention"."""
    return name.replace("-", "_")


def refiner_settings() -> dict[str, tuple[Any, str]]:
    """Every refiner setting a flag can override, from the registry's kinds: name ->
    (declared type, help). A setting shared by kinds is declared alike in each; its help
    names the kinds that have it, each kind's own where their helps differ ("inner steps r
    (srn, grn); attention iterations T (slot-attention)")."""
    declared: dict[str, Any] = {}
    helps: dict[str, dict[str, list[str]]] = {}  # name -> help -> the kinds that give it
    for kind in KINDS.values():
        hints = get_type_hints(kind.settings, include_extras=True)
        for field in fields(kind.settings):
            if field.name not in kind.setting_names():
                continue
            assert declared.setdefault(field.name, hints[field.name]) == hints[field.name], \
                f"{field.name} is declared differently by the refiner kinds"
            helps.setdefault(field.name, {}).setdefault(field.metadata.get("help", ""), []).append(kind.name)
    return {name: (declared[name], "; ".join(f"{help_} ({', '.join(kinds)})" for help_, kinds in helps[name].items()))
            for name in declared}


def _add_setting_flag(group: argparse._ArgumentGroup, name: str, declared_type: Any, help_: str) -> None:
    """One refiner setting's flag, checked by its declaration (None: the preset's value)."""
    options = get_args(declared_type) if get_origin(declared_type) in (Union, UnionType) else (declared_type,)
    value_type = next(option for option in options if option is not type(None))
    base = get_args(value_type)[0] if get_origin(value_type) is Annotated else value_type
    rules = value_type.__metadata__ if get_origin(value_type) is Annotated else ()
    if base is bool:
        group.add_argument(flag_of(name), action=argparse.BooleanOptionalAction, default=None, help=help_)
    elif any(isinstance(rule, OneOf) for rule in rules):
        choices = next(rule.choices for rule in rules if isinstance(rule, OneOf))
        group.add_argument(flag_of(name), choices=choices, default=None, help=help_)
    else:
        group.add_argument(flag_of(name), type=declared(value_type), default=None, help=help_)


DATA_DIR = PROJECT_ROOT / "data"
LAUNCHERS = ("inline", "local", "slurm")


def add_common_arguments(parser: argparse.ArgumentParser, runner: str, uses_edges: bool = False) -> None:
    """The arguments every runner takes (None = from the preset): --preset, --config,
    --seeds, --threads, --device, --compile, --data-dir, --out, --checkpoint-minutes, --dry-run, --compare;
    the refiner arms, one flag per registered kind (--srn, --grn, ...), with a flag for each of their
    settings (--steps, --inner-lr, ...); and where the runs execute (--launcher, --jobs, --jobs-per-gpu,
    the SLURM resources --partition, --time, --gpus-per-job, --cpus-per-job, --mem, and --requeues)."""
    parser.add_argument("--preset", default="auto",
                        help="tiny: every path in seconds (what the tests run); smoke: minutes on a laptop CPU; "
                             "paper: the paper's settings (GPU); "
                             "auto: paper on a GPU, else smoke; or another preset of the presets file "
                             "(C-SWM: laptop, an afternoon on a laptop CPU)")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"the presets file (default: configs/{runner}.yaml)")
    parser.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default: the preset's)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads, pinned so reruns are bit-identical (default: the preset's, else all cores)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="where generated datasets are cached and reused (default: data/)")
    parser.add_argument("--device", default="auto",
                        help="auto (a GPU when one is visible, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--compile", choices=("on", "off", "auto"), default="auto",
                        help="capture the refiners' inner loop with torch.compile (on a GPU: CUDA graphs; on the CPU: "
                             "the aot_eager backend, the eager numbers); auto (default): on with CUDA, off on the CPU")
    parser.add_argument("--out", type=Path, default=Path("results") / runner,
                        help=f"results folder (default: results/{runner}); a rerun resumes what is there")
    parser.add_argument("--checkpoint-minutes", type=non_negative_float, default=10.0,
                        help="write a run's resume checkpoint at an epoch end at most every M minutes (0: every "
                             "epoch; always at the last); a rerun resumes each unfinished run from it (default 10)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved settings of every arm and the runs that would execute "
                             "(and which are done) as JSON, then exit")
    parser.add_argument("--compare", action="store_true",
                        help="write compare.md: every refiner arm the results folder holds (the runs of several "
                             "commands with this --out, e.g. --srn, --srn --backprop last, --slot-attention) in one "
                             "table with the baseline, then exit; runs nothing")
    refiner = parser.add_argument_group("refiner arms (their settings default to the preset's refiner section)")
    for kind in KINDS.values():
        refiner.add_argument(kind.flag, action="store_true",
                             help=f"add the {kind.label} arm (same data and seeds): {kind.summary}")
    for name, (declared_type, help_) in refiner_settings().items():
        _add_setting_flag(refiner, name, declared_type, help_)
    launch = parser.add_argument_group("where the (arm, seed) runs execute (runners/common/launch.py)")
    launch.add_argument("--launcher", choices=LAUNCHERS, default="inline",
                        help="inline: one after another in this process; local: separate processes, up to "
                             "--jobs at once; slurm: one SLURM job per run (submitit)")
    launch.add_argument("--jobs", type=positive_int, default=None,
                        help="at most this many runs at once (local default: one per core, or "
                             "visible GPUs x --jobs-per-gpu; slurm default: no limit)")
    launch.add_argument("--jobs-per-gpu", type=positive_int, default=None, help="local on GPUs: runs sharing a GPU (default 1)")
    launch.add_argument("--partition", default=None, help="slurm: the partition (default: the preset's launcher section)")
    launch.add_argument("--time", type=positive_int, default=None, dest="time_min",
                        help="slurm: minutes per job (default: the preset's)")
    launch.add_argument("--gpus-per-job", type=non_negative_int, default=None, help="slurm (default: the preset's)")
    launch.add_argument("--cpus-per-job", type=positive_int, default=None,
                        help="slurm: also each run's torch threads (default: the preset's)")
    launch.add_argument("--mem", type=positive_int, default=None, dest="mem_gb", help="slurm: GB per job (default: the preset's)")
    launch.add_argument("--requeues", type=non_negative_int, default=None,
                        help="slurm: times a job that reaches its time limit is requeued to resume from its checkpoint "
                             "(default: enough for the arm's measured run time at --time, plus one; 3 before any "
                             "run is measured); a preempted job is always requeued")
    parser.set_defaults(uses_edges=uses_edges)
    parser.add_argument("--job", type=job_name, default=None, help=argparse.SUPPRESS)  # in a job's process: its ARM:SEED


def main_guard(main: Callable[[], None]) -> NoReturn:
    """Run a runner's main(): bad input -> one line on stderr and exit code 2, never a traceback."""
    try:
        main()
    except (UsageError, UpstreamError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except JobsFailed as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_JOBS_FAILED)
    except (InnerLossNotFinite, InputNotFinite) as error:
        print(f"error: training diverged: {error}; finished runs are saved", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; run the same command again to resume", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)
