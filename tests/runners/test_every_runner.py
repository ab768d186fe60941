"""What every runner promises alike, tested once for each runner of the registry
(runners/registry.py): the script answers bad input with one line and exit code 2 before
it touches anything, and --compare on a folder without runs is one line and exit code 2."""
import os
import subprocess
import sys

import pytest

from patches.vendor import PROJECT_ROOT
from runners.common.cli import main_guard
from runners.registry import RUNNERS, runner_module

TABLE_FLAGS = {"cswm": ["--env", "space", "--k", "3"]}  # the flags that choose a runner's table, where it has them


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_the_script_answers_a_device_it_lacks_in_one_line_with_exit_2_touching_nothing(runner, tmp_path):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / f"{runner}.py"), *TABLE_FLAGS.get(runner, []),
                             "--device", "cuda", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --device cuda: no CUDA device is available here")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runner", RUNNERS)
def test_compare_without_runs_is_one_line_and_exit_2(runner, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main_guard(lambda: runner_module(runner).main([*TABLE_FLAGS.get(runner, []), "--compare", "--preset", "smoke",
                                                       "--device", "cpu", "--out", str(tmp_path)]))
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith("error: ") and error.count("\n") == 1
    assert "holds no runs: run the arms first" in error
