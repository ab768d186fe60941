"""Fixtures of the runners' tests: a runner's tiny command (``tiny_argv``: its tiny preset,
the CPU, its data) and one run of every refiner kind the runner takes, made once per test
session and read by every test that needs a finished run (``every_kind``)."""
from typing import Callable

import pytest

from refiners.registry import KINDS
from tests import clutrr_world
from tests.runners.commands import table_flags, FinishedRun, kinds_taken, run_command


@pytest.fixture(scope="session")
def tiny_argv(request, tmp_path_factory) -> Callable[[str], list[str]]:
    """runner -> the options of its tiny command: its table flags, --preset tiny, the CPU
    and its data (C-SWM: the session's tiny datasets; CLUTRR: the shared zip, unpacked
    once; the others: generated once per session)."""
    generated = tmp_path_factory.mktemp("tiny-data")

    def argv(runner: str) -> list[str]:
        if runner == "cswm":
            data = ["--data-dir", str(request.getfixturevalue("cswm_data_dir"))]
        elif runner == "clutrr":
            data = ["--data", str(clutrr_world.shared_zip()), "--data-dir", str(clutrr_world.data_dir())]
        else:
            data = ["--data-dir", str(generated)]
        return [*table_flags(runner), "--preset", "tiny", "--device", "cpu", *data]
    return argv


@pytest.fixture(scope="session")
def every_kind(tiny_argv, tmp_path_factory) -> Callable[[str], FinishedRun]:
    """runner -> its tiny command with the baseline and every kind it takes (one seed),
    run once per session. Tests may add runs to its --out; they never change these."""
    done = {}

    def run(runner: str) -> FinishedRun:
        if runner not in done:
            argv = [*tiny_argv(runner), *(KINDS[kind].flag for kind in kinds_taken(runner)), "--seeds", "1"]
            done[runner] = run_command(runner, argv, tmp_path_factory.mktemp(f"{runner}-every-kind"))
        return done[runner]
    return run
