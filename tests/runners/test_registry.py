import pytest

from benchmarks.arm_steps import BUILDERS
from runners.common.presets import CONFIG_DIR
from runners.registry import RUNNERS, runner_module


def test_every_runner_has_its_script_presets_and_arm_builder_and_nothing_else_does():
    presets = {path.stem for path in CONFIG_DIR.glob("*.yaml")} - {"paper_numbers"}
    assert presets == set(RUNNERS) == set(BUILDERS)
    assert all(callable(runner_module(name).main) for name in RUNNERS)
    with pytest.raises(KeyError, match="no runner 'reproduce'"):
        runner_module("reproduce")
