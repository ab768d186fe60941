"""Presets: configs/<runner>.yaml maps a preset name (smoke, paper) to settings.

An optional ``common`` section is merged under every preset. ``auto`` resolves to
``paper`` when CUDA is available and to ``smoke`` otherwise, and says so.
"""
from pathlib import Path

import torch
import yaml

from runners.common.cli import UsageError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def resolve_preset(name: str, cuda_available: bool | None = None) -> str:
    """smoke|paper -> itself; auto -> paper with CUDA, else smoke (printing which and why)."""
    if name != "auto":
        return name
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    chosen = "paper" if cuda_available else "smoke"
    print(f"preset auto -> {chosen} ({'CUDA available' if cuda_available else 'no CUDA device'})")
    return chosen


def load_preset(runner: str, preset: str, config_dir: Path = CONFIG_DIR) -> dict:
    """Settings of ``preset`` (already resolved) from ``config_dir/<runner>.yaml``."""
    path = config_dir / f"{runner}.yaml"
    try:
        presets = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read presets {path}: {error}".replace("\n", " ")) from None
    if not isinstance(presets, dict) or not isinstance(presets.get(preset), dict):
        raise UsageError(f"{path} has no preset {preset!r}")
    return {**presets.get("common", {}), **presets[preset]}
