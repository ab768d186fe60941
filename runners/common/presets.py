"""Presets: a YAML file (configs/<runner>.yaml, or --config) maps a preset name (smoke,
paper, and any other the file has, e.g. C-SWM's laptop) to settings.

An optional ``common`` section is merged under every preset; a ``refiner`` section (in
either) maps refiner kinds (srn, grn, ...: refiners.registry.KINDS) to their settings.
``auto`` resolves to ``paper`` on a GPU and to ``smoke`` otherwise, and says so.
"""
import sys
from pathlib import Path

import yaml

from patches.vendor import PROJECT_ROOT
from runners.common.errors import UsageError

CONFIG_DIR = PROJECT_ROOT / "configs"


def resolve_preset(name: str, on_gpu: bool, why: str | None = None) -> str:
    """A named preset -> itself; auto -> paper on a GPU, else smoke (saying which and
    ``why``, default "GPU" / "no GPU", on stderr)."""
    if name != "auto":
        return name
    chosen = "paper" if on_gpu else "smoke"
    print(f"preset auto -> {chosen} ({why or ('GPU' if on_gpu else 'no GPU')})", file=sys.stderr)
    return chosen


def load_preset(path: Path, preset: str) -> dict:
    """Settings of ``preset`` (already resolved) from the YAML file ``path``, ``common``
    merged under it (the ``refiner`` sections merged kind by kind)."""
    try:
        presets = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read presets {path}: {error}".replace("\n", " ")) from None
    if not isinstance(presets, dict) or not isinstance(presets.get(preset), dict):
        named = sorted(name for name, values in (presets or {}).items() if name != "common" and isinstance(values, dict)) \
            if isinstance(presets, dict) else []
        raise UsageError(f"{path} has no preset {preset!r} (it has: {', '.join(named) or 'none'})")
    common, chosen = presets.get("common") or {}, presets[preset]
    merged = {**common, **chosen}
    refiners = {**(common.get("refiner") or {})}
    for kind, values in (chosen.get("refiner") or {}).items():
        refiners[kind] = {**refiners.get(kind, {}), **values}
    if refiners:
        merged["refiner"] = refiners
    return merged
