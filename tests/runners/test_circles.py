import json
import subprocess
import sys

import pytest
import yaml

from patches.vendor import PROJECT_ROOT
from runners import circles as runner
from runners.common.cli import UsageError

TINY = {
    "common": yaml.safe_load((PROJECT_ROOT / "configs" / "circles.yaml").read_text())["common"],
    "smoke": {"scale": "tiny test scale", "seeds": 2, "train_images": 32, "epochs": 1, "test_images": 30,
              "batch_size": 16, "set_size": 9, "generator_widths": [4, 4, 4, 8], "decoder_widths": [8, 4, 4],
              "srn_hidden": 8, "inner_steps": {0: 2}, "figure_images": 3, "interpolation_frames": 4,
              "tsne_step": 12},
}


@pytest.fixture
def tiny_config(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "circles.yaml").write_text(yaml.safe_dump(TINY))
    return tmp_path / "configs"


def test_both_arms_end_to_end_then_resume(tmp_path, tiny_config, capsys):
    argv = ["--srn", "--preset", "smoke", "--threads", "1", "--out", str(tmp_path / "out"),
            "--data-dir", str(tmp_path / "data")]
    runner.main(argv, config_dir=tiny_config)
    directory = tmp_path / "out" / "smoke-32images-1epochs"
    runs = json.loads((directory / "results.json").read_text())["runs"]
    assert sorted((run["arm"], run["seed"]) for run in runs.values()) == [
        ("SRN", 0), ("SRN", 1), ("baseline", 0), ("baseline", 1)]
    for run in runs.values():
        assert 0 <= run["metrics"]["decomposed_all"] <= 1 and run["metrics"]["reconstruction_error"] > 0
    markdown = (directory / "results.md").read_text()
    assert "tiny test scale" in markdown and "| 5 circles: % decomposed |" in markdown
    assert "p, SRN vs baseline" in markdown and "test reconstruction error" in markdown
    for name in ("decomposition_baseline", "decomposition_SRN", "responsibility", "tsne"):
        assert (directory / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((directory / "models").glob("*-seed0.pt"))) == 2
    assert (tmp_path / "data" / "circles" / "train-seed0-32.npz").exists()

    capsys.readouterr()
    runner.main(argv, config_dir=tiny_config)
    assert "reusing 4 finished run(s)" in capsys.readouterr().out
    assert json.loads((directory / "results.json").read_text())["runs"] == runs


@pytest.mark.parametrize("argv,message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "0"], "--epochs: must be >= 1"),
    (["--images", "ten"], "--images: invalid positive_int value"),
    (["--preset", "smoke", "--images", "10"], "--images must be at least the batch size"),
])
def test_bad_arguments_are_usage_errors(tmp_path, argv, message):
    with pytest.raises(UsageError, match=message):
        runner.main([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")])
    assert not (tmp_path / "data").exists()


def test_corrupt_cache_exits_2_in_one_line(tmp_path):
    cache = tmp_path / "data" / "circles" / "train-seed0-64.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a dataset")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "runners" / "circles.py"), "--preset", "smoke",
                             "--images", "64", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "is corrupt" in result.stderr and str(cache) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("detach", [False, True])
def test_detach_initial_set_reaches_the_model(detach):
    config = {**TINY["common"], **TINY["smoke"], "detach_initial_set": detach}
    _, srn = runner.settings_of(config, runner.CONFIG_DIR / "circles.yaml")
    assert runner.make_model(srn).detach_initial_set is detach
