"""The paper's published numbers (configs/paper_numbers.yaml, each with its source) as
reference rows of a runner's tables, shown only when the run's settings are the paper
preset's (``runners.common.experiment.Experiment.paper_differences``); otherwise a line says
which settings differ."""
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from runners.common.presets import CONFIG_DIR

NUMBERS_FILE = CONFIG_DIR / "paper_numbers.yaml"
DOCUMENTS = {"neurips": "NeurIPS 2020 paper", "supplement": "supplementary material"}


@dataclass(frozen=True)
class Reported:
    """One published number: ``mean`` and ``std`` (None where the paper prints none), in
    the units the paper prints (% for accuracies)."""

    mean: float
    std: float | None

    def text(self, digits: int) -> str:
        return f"{self.mean:.{digits}f}" + ("" if self.std is None else f" ± {self.std:.{digits}f}")


@dataclass(frozen=True)
class PaperTable:
    """One published table: ``name`` and ``trials`` from its source, and arm -> metric key
    -> Reported."""

    name: str
    document: str
    trials: int | None
    arms: dict[str, dict[str, Reported]]

    @property
    def citation(self) -> str:
        trials = f", {self.trials} trials" if self.trials else ""
        return f"{self.name} ({DOCUMENTS[self.document]}{trials})"


def paper_table(runner: str, *path: Any) -> PaperTable:
    """The table at ``runner`` / ``path`` of configs/paper_numbers.yaml, e.g.
    paper_table("cswm", "table_3", "games", "space", 3): its source is the nearest one
    above the arms."""
    node = yaml.safe_load(NUMBERS_FILE.read_text())[runner]
    source = None
    for key in path:
        source = node.get("source", source) if isinstance(node, dict) else source
        node = node[key]
    source = node.get("source", source)
    arms = node["arms"] if "arms" in node else node
    return PaperTable(source["name"], source["document"], source.get("trials"),
                      {arm: {key: Reported(*value) for key, value in metrics.items()} for arm, metrics in arms.items()})


def flattened(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"refiner": {"steps": 5}} -> {"refiner.steps": 5}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(ours: Mapping[str, Mapping], paper: Mapping[str, Mapping]) -> list[str]:
    """What differs between our arms' run settings and those of the paper preset (arm ->
    the settings that identify its runs), each setting once: "epochs 3 (paper: 50)"."""
    found = {}
    for arm in ours.keys() & paper.keys():
        mine, theirs = flattened(ours[arm]), flattened(paper[arm])
        for key in sorted(mine.keys() | theirs.keys()):
            if mine.get(key) != theirs.get(key) and key not in found:
                found[key] = f"{key} {mine.get(key)} (paper: {theirs.get(key)})"
    return list(found.values())


def reference_note(table: PaperTable, differing: list[str]) -> str:
    """The line under a table: which published table its reference rows are, or why it
    has none."""
    if differing:
        return f"Paper, {table.citation}: not comparable: {'; '.join(differing)}."
    return f"Reference rows \"paper\": {table.citation}."


def reference_rows(table: PaperTable, differing: list[str], labels: Mapping[str, str]) -> dict[str, dict[str, Reported]]:
    """The table's arms under their display ``labels`` (arm name -> label; arms not shown
    are left out), or none when some settings differ from the paper's."""
    if differing:
        return {}
    return {labels[arm]: metrics for arm, metrics in table.arms.items() if arm in labels}
