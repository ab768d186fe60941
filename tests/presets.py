"""The project's presets files as the tests use them: every test runs a runner's ``tiny``
preset (configs/<runner>.yaml), and a test that needs another size writes a copy of the
file with its tiny preset changed (``tiny_presets``)."""
from pathlib import Path

import yaml

from runners.common.presets import CONFIG_DIR, load_preset


def tiny_preset(runner: str) -> dict:
    """configs/<runner>.yaml's tiny preset, ``common`` merged under it."""
    return load_preset(CONFIG_DIR / f"{runner}.yaml", "tiny")


def tiny_presets(runner: str, path: Path, **changes) -> Path:
    """A copy of configs/<runner>.yaml at ``path`` whose tiny preset has ``changes`` over
    it (a value of None removes a setting; a ``refiner`` change replaces the tiny preset's
    refiner section); returns ``path``, for --config."""
    presets = yaml.safe_load((CONFIG_DIR / f"{runner}.yaml").read_text())
    tiny = {**presets["tiny"], **changes}
    presets["tiny"] = {key: value for key, value in tiny.items() if value is not None}
    path.write_text(yaml.safe_dump(presets))
    return path
