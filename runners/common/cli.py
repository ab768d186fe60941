"""Command-line conventions of every runner: one-line errors with exit code 2."""
import argparse
import sys
from pathlib import Path
from typing import Callable, NoReturn

from patches.vendor import PROJECT_ROOT, UpstreamError
from srn import InnerLossNotFinite, InputNotFinite

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


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def finite_positive_float(text: str) -> float:
    value = positive_float(text)
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite, got {value}")
    return value


def fraction(text: str) -> float:
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


DATA_DIR = PROJECT_ROOT / "data"
REFINER_KINDS = ("srn", "grn")
LAUNCHERS = ("inline", "local", "slurm")


def add_common_arguments(parser: argparse.ArgumentParser, runner: str) -> None:
    """The arguments every runner takes (None = from the preset): --preset, --config,
    --seeds, --threads, --device, --data-dir, --out, --dry-run; the refiner arms
    (--srn, --grn) with their settings (--steps, --inner-lr, --momentum, --backprop,
    --hidden); and where the runs execute (--launcher, --jobs, --jobs-per-gpu and the
    SLURM resources --partition, --time, --gpus-per-job, --cpus-per-job, --mem)."""
    parser.add_argument("--preset", choices=PRESETS, default="auto",
                        help="smoke: minutes on a laptop CPU; paper: the paper's settings (GPU); "
                             "auto: paper on a GPU, else smoke")
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
    for kind in REFINER_KINDS:
        refiner.add_argument(f"--{kind}", action="store_true", help=f"add the {kind.upper()} arm (same data and seeds)")
    refiner.add_argument("--steps", type=non_negative_int, default=None, help="inner steps r")
    refiner.add_argument("--inner-lr", type=finite_positive_float, default=None, help="inner learning rate")
    refiner.add_argument("--momentum", type=fraction, default=None, help="momentum of the inner SGD (0: plain)")
    refiner.add_argument("--backprop", choices=("unroll", "last"), default=None,
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
