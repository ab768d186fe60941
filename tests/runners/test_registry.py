import pytest

from runners.common.presets import CONFIG_DIR
from runners.registry import RUNNERS, arm_builder, runner_module


def test_every_runner_has_its_script_presets_and_arm_builder_and_nothing_else_does():
    presets = {path.stem for path in CONFIG_DIR.glob("*.yaml")} - {"paper_numbers"}
    assert presets == set(RUNNERS)
    assert all(callable(runner_module(name).main) and callable(arm_builder(name)) for name in RUNNERS)
    for lookup in (runner_module, arm_builder):
        with pytest.raises(KeyError, match="no runner 'reproduce'"):
            lookup("reproduce")
