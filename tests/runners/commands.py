"""A runner's command as the tests run it: the flags that choose its table
(``table_flags``), the refiner kinds it takes, and one command run in this process with its
results read back (``run_command``)."""
import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from refiners.registry import KINDS
from runners.registry import runner_module


def table_flags(runner: str) -> list[str]:
    """The flags that choose the runner's main table (its experiment's ``table_flags``)."""
    return list(runner_module(runner).EXPERIMENT.table_flags)


def kinds_taken(runner: str) -> list[str]:
    """The registered refiner kinds the runner can take."""
    uses_edges = runner_module(runner).parse_args([*table_flags(runner), "--device", "cpu"]).uses_edges
    return [name for name, kind in KINDS.items() if uses_edges or not kind.refines_edges]


@dataclass(frozen=True)
class FinishedRun:
    """One command of a runner, done: its argv (without --out), its --out, its results
    folder, what it printed and results.json's runs."""

    argv: list[str]
    out: Path
    folder: Path
    printed: str
    runs: dict


def run_command(runner: str, argv: list[str], out: Path) -> FinishedRun:
    """``runners/<runner>.py argv --out out`` in this process, its output captured."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        runner_module(runner).main([*argv, "--out", str(out)])
    [folder] = [path for path in out.iterdir() if path.is_dir()]
    return FinishedRun(argv, out, folder, printed.getvalue(), json.loads((folder / "results.json").read_text())["runs"])
