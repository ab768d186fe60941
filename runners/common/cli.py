"""Command-line conventions of every runner: one-line errors with exit code 2."""
import argparse
import sys
from pathlib import Path
from typing import Callable, NoReturn

from patches.vendor import UpstreamError
from srn import InnerLossNotFinite

PRESETS = ("smoke", "paper", "auto")
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input the user can fix (argument, data, output folder); its message is one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise UsageError (one line, exit code 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_ROOT / "data"


def add_common_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """--preset, --seeds, --threads, --data-dir and --out, the same for every runner
    (None = from the preset)."""
    parser.add_argument("--preset", choices=PRESETS, default="auto",
                        help="smoke: minutes on a laptop CPU; paper: the paper's settings (GPU); "
                             "auto: paper if CUDA is available, else smoke")
    parser.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default: the preset's)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads, pinned so reruns are bit-identical (default: the preset's, else all cores)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="where generated datasets are cached and reused (default: data/)")
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"results folder (default: {default_out}); a rerun resumes what is there")


def main_guard(main: Callable[[], None]) -> NoReturn:
    """Run a runner's main(): bad input -> one line on stderr and exit code 2, never a traceback."""
    try:
        main()
    except (UsageError, UpstreamError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except InnerLossNotFinite as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; run the same command again to resume", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)
