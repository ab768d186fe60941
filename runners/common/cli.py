"""Command-line conventions of every runner: one-line errors with exit code 2."""
import argparse
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, get_args

from adapters.contract import KINDS
from patches.vendor import PROJECT_ROOT, UpstreamError
from srn import InnerLossNotFinite, InputNotFinite
from srn.inner_descent import BACKPROP_MODES, Steps
from srn.settings import Count, Fraction, Index, Positive, value_problem

PRESETS = ("smoke", "paper", "auto")
EXIT_JOBS_FAILED = 1  # some jobs of a launcher failed: the others' runs are saved
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3  # training diverged: a refiner's input, inner loss or result became NaN or infinite
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input the user can fix (argument, data, output folder); its message is one line."""


class JobsFailed(Exception):
    """Some jobs of a launcher failed (their logs are named above); the message is one line."""


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
    ``Annotated[int | float, Range(...)]`` of ``srn.settings``): the flag is checked by the
    same declaration as the setting it overrides."""
    base = get_args(declared_type)[0]

    def parse(text: str):
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if base is int else 'a number'}, "
                                             f"got {text!r}") from None
        problem = value_problem(declared_type, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


positive_int = declared(Count)
non_negative_int = declared(Index)


DATA_DIR = PROJECT_ROOT / "data"
LAUNCHERS = ("inline", "local", "slurm")


def add_common_arguments(parser: argparse.ArgumentParser, runner: str) -> None:
    """The arguments every runner takes (None = from the preset): --preset, --config,
    --seeds, --threads, --device, --data-dir, --out, --dry-run; the refiner arms
    (--srn, --grn) with their settings (--steps, --inner-lr, --momentum, --backprop,
    --hidden); and where the runs execute (--launcher, --jobs, --jobs-per-gpu and the
    SLURM resources --partition, --time, --gpus-per-job, --cpus-per-job, --mem)."""
    parser.add_argument("--preset", default="auto",
                        help="smoke: minutes on a laptop CPU; paper: the paper's settings (GPU); "
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
    parser.add_argument("--out", type=Path, default=Path("results") / runner,
                        help=f"results folder (default: results/{runner}); a rerun resumes what is there")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved settings of every arm and the runs that would execute "
                             "(and which are done) as JSON, then exit")
    refiner = parser.add_argument_group("refiner arms (their settings default to the preset's refiner section)")
    for kind in KINDS:
        refiner.add_argument(f"--{kind}", action="store_true", help=f"add the {kind.upper()} arm (same data and seeds)")
    refiner.add_argument("--steps", type=declared(Steps), default=None, help="inner steps r")
    refiner.add_argument("--inner-lr", type=declared(Positive), default=None, help="inner learning rate")
    refiner.add_argument("--momentum", type=declared(Fraction), default=None, help="momentum of the inner SGD (0: plain)")
    refiner.add_argument("--backprop", choices=BACKPROP_MODES, default=None,
                         help="through every inner step (unroll) or the last only")
    refiner.add_argument("--hidden", type=positive_int, default=None, help="H_agg's hidden width")
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
