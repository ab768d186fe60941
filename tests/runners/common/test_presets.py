import json

import pytest
import yaml

from runners.common.errors import UsageError
from runners.common.paper import NUMBERS_FILE
from runners.common.presets import CONFIG_DIR, load_preset, resolve_preset
from runners.registry import runner_module
from tests.runners.commands import table_flags


def test_auto_follows_the_device_and_says_so(capsys):
    assert resolve_preset("auto", on_gpu=False) == "smoke"
    assert "preset auto -> smoke (no GPU)" in capsys.readouterr().err
    assert resolve_preset("auto", on_gpu=True) == "paper"
    assert resolve_preset("paper", on_gpu=False) == "paper"


def test_common_settings_are_merged_under_each_preset(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("common: {lr: 0.1, epochs: 1}\nsmoke: {epochs: 2}\npaper: {epochs: 500}\n")
    assert load_preset(path, "smoke") == {"lr": 0.1, "epochs": 2}
    assert load_preset(path, "paper")["epochs"] == 500


def test_refiner_sections_are_merged_kind_by_kind(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("common: {refiner: {srn: {steps: 5, inner_lr: 0.1}, grn: {steps: 10, inner_lr: 0.01}}}\n"
                    "smoke: {refiner: {srn: {hidden: 64}}}\n")
    assert load_preset(path, "smoke")["refiner"] == {"srn": {"steps": 5, "inner_lr": 0.1, "hidden": 64},
                                                    "grn": {"steps": 10, "inner_lr": 0.01}}


def test_missing_file_or_preset_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read presets"):
        load_preset(tmp_path / "absent.yaml", "smoke")
    (tmp_path / "toy.yaml").write_text("smoke: {epochs: 2}\n")
    with pytest.raises(UsageError, match="no preset 'paper'"):
        load_preset(tmp_path / "toy.yaml", "paper")


def test_every_runner_config_has_both_presets_and_a_refiner_section():
    configs = sorted(path for path in CONFIG_DIR.glob("*.yaml") if path != NUMBERS_FILE)  # the rest are presets
    assert [path.stem for path in configs] == ["circles", "clutrr", "cswm", "sort_of_clevr"]
    for path in configs:
        for preset in ("smoke", "paper"):
            settings = load_preset(path, preset)
            assert settings["seeds"] >= 1 and set(settings["refiner"]) <= {"srn", "grn"} and settings["refiner"]


def test_an_unknown_preset_names_the_presets_the_file_has(tmp_path):
    (tmp_path / "toy.yaml").write_text("common: {lr: 1}\nsmoke: {epochs: 2}\nlaptop: {epochs: 20}\n")
    with pytest.raises(UsageError, match=r"has no preset 'huge' \(it has: laptop, smoke\)$"):
        load_preset(tmp_path / "toy.yaml", "huge")




def shipped_presets() -> list[tuple[str, str]]:
    """(runner, preset) for every preset of every presets file the project ships."""
    return [(path.stem, name) for path in sorted(CONFIG_DIR.glob("*.yaml")) if path != NUMBERS_FILE
            for name, values in yaml.safe_load(path.read_text()).items() if name != "common" and isinstance(values, dict)]


@pytest.mark.parametrize("runner, preset", shipped_presets())
def test_every_shipped_preset_resolves_into_its_runners_settings(runner, preset, tmp_path, capsys):
    """Each preset (smoke, paper, C-SWM's laptop, ...) goes through its runner's settings
    and every refiner arm's, as a user's command would: --dry-run, which stops before any data."""
    module = runner_module(runner)
    kinds = [f"--{kind}" for kind in yaml.safe_load((CONFIG_DIR / f"{runner}.yaml").read_text())["common"]["refiner"]]
    module.main([*table_flags(runner), *kinds, "--preset", preset, "--device", "cpu", "--dry-run",
                 "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")])
    plan = json.loads(capsys.readouterr().out)
    assert plan["preset"] == preset and len(plan["arms"]) == 1 + len(kinds)
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()
