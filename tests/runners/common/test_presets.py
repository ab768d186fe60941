import pytest

from runners.common.cli import UsageError
from runners.common.presets import CONFIG_DIR, load_preset, resolve_preset


def test_auto_follows_cuda_and_says_so(capsys):
    assert resolve_preset("auto", cuda_available=False) == "smoke"
    assert "no CUDA device" in capsys.readouterr().out
    assert resolve_preset("auto", cuda_available=True) == "paper"
    assert resolve_preset("paper", cuda_available=False) == "paper"


def test_common_settings_are_merged_under_each_preset(tmp_path):
    (tmp_path / "toy.yaml").write_text("common: {lr: 0.1, epochs: 1}\nsmoke: {epochs: 2}\npaper: {epochs: 500}\n")
    assert load_preset("toy", "smoke", tmp_path) == {"lr": 0.1, "epochs": 2}
    assert load_preset("toy", "paper", tmp_path)["epochs"] == 500


def test_missing_file_or_preset_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read presets"):
        load_preset("absent", "smoke", tmp_path)
    (tmp_path / "toy.yaml").write_text("smoke: {epochs: 2}\n")
    with pytest.raises(UsageError, match="no preset 'paper'"):
        load_preset("toy", "paper", tmp_path)


def test_every_runner_config_has_both_presets():
    configs = sorted(CONFIG_DIR.glob("*.yaml"))
    for path in configs:
        for preset in ("smoke", "paper"):
            assert load_preset(path.stem, preset)["seeds"] >= 1
