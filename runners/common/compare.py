"""Every refiner arm of one results folder beside its baseline, in one table (``--compare``,
which every runner takes).

Several commands may write to the same --out: ``--srn``, ``--srn --backprop last``,
``--srn --schedule 0:10,2000:0``, ``--slot-attention``. results.json keeps their runs apart
by their settings, and each command's results.md shows only its own arms. ``compared_arms``
finds every refiner identity whose settings besides its refiner are the baseline's, and
names it by its kind and what sets it apart from the other identities of that kind
("srn, backprop last"); ``compare_report`` lays them in one table, with the wall time
of each run and the step-count curves."""
import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Sequence

from refiners.registry import KINDS
from refiners.schedule import schedule_text
from runners.common.errors import UsageError
from runners.common.curves import save_steps_curves
from runners.common.invocation import BASELINE, arm_label
from runners.common.results import ResultStore, settings_key
from runners.common.stats import Metric, comparison_table

MINUTES = Metric("minutes", "minutes per run (training and evaluation)", digits=1)
COMPARE_REPORT = "compare.md"
COMPARE_STEPS_CURVE = "compare_steps_curve.png"


def as_stored(settings: dict) -> dict:
    """``settings`` as results.json holds them (JSON: tuples become lists, keys strings)."""
    return json.loads(json.dumps(settings, default=str))


def setting_text(value: Any) -> str:
    """A setting as its flag takes it: a schedule [[0, 10], [2000, 0]] -> "0:10,2000:0"."""
    if isinstance(value, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in value):
        return schedule_text(value)
    return "none" if value is None else str(value)


def distinctions(kind: str, refiners: Sequence[dict]) -> list[str]:
    """For each refiner identity of ``kind`` (its refiner settings as results.json holds
    them), what sets it apart: the settings whose values differ among ``refiners``, each where it is
    not the kind's default ("backprop last", "schedule 0:10,2000:0"), joined by ", "."""
    defaults = {field.name: None if field.default is MISSING else field.default for field in fields(KINDS[kind].settings)}
    keys = sorted({key for refiner in refiners for key in refiner})
    varying = [key for key in keys if len({json.dumps(refiner.get(key)) for refiner in refiners}) > 1]
    return [", ".join(f"{key} {setting_text(refiner.get(key))}" for key in varying
                      if refiner.get(key) != as_stored(defaults.get(key)))
            for refiner in refiners]


def refiner_only(settings: dict, shared: dict) -> dict:
    """A refiner arm's settings (as stored) besides ``shared``: its ``refiner`` section and
    the runner's settings that depend on the refiner (circles' detach_initial_set, CLUTRR's
    GRN l2), in one dict."""
    return {**{key: value for key, value in settings.items() if key not in shared and key != "refiner"},
            **settings["refiner"]}


def compared_arms(store: ResultStore, baseline: dict, per_refiner: Sequence[str] = ()) -> dict[str, tuple[str, dict]]:
    """Name -> (arm, settings): "baseline" (``baseline``: the baseline arm's settings), then
    every refiner identity in ``store`` that shares every setting of the baseline but those
    the runner sets ``per_refiner`` (CLUTRR's l2, the GRN's own), in the registry's order
    of kinds, each kind's identities in the order of their first finished run; named
    "<kind>" or "<kind>, <distinction>" (``distinctions`` of ``refiner_only``)."""
    shared = {key: value for key, value in as_stored(baseline).items()
              if key != "refiner" and key not in per_refiner}  # a CLUTRR baseline has "refiner": null
    found: dict[tuple[str, str], dict] = {}
    for run in sorted(store.runs.values(), key=lambda run: run["finished"]):
        settings = run["settings"]
        if run["arm"] != BASELINE and all(settings.get(key) == value for key, value in shared.items()):
            found.setdefault((run["arm"], settings_key(settings)), settings)
    arms = {BASELINE: (BASELINE, baseline)}
    for kind in KINDS:
        identities = [settings for (arm, _), settings in found.items() if arm == kind]
        for settings, distinction in zip(identities, distinctions(kind, [refiner_only(s, shared) for s in identities])):
            arms[f"{kind}, {distinction}" if distinction else kind] = (kind, settings)
    return arms


def compare_report(store: ResultStore, baseline: dict, metrics: Sequence[Metric], steps_metrics: Sequence[Metric],
                   title: str, model: str | None = None, per_refiner: Sequence[str] = ()) -> str:
    """The Markdown comparison of ``compared_arms``, over every seed any run has: each
    arm's full refiner settings, the table of ``metrics`` and ``MINUTES`` (mean ± std,
    Welch's p against the baseline), and the step-count curves of ``steps_metrics`` (drawn
    as compare_steps_curve.png in the folder). UsageError when the runs were made under
    different environments (``ResultStore.named_table``)."""
    arms = compared_arms(store, baseline, per_refiner)
    seeds = range(1 + max((run["seed"] for run in store.runs.values()), default=-1))
    table = store.named_table(arms, seeds)
    runs = {}
    for name, (arm, settings) in arms.items():
        records = [record for seed in seeds if (record := store.record(arm, settings, seed)) is not None]
        runs[arm_label(name, model)] = [{**metrics_of_run, MINUTES.key: record["seconds"] / 60}
                                        for metrics_of_run, record in zip(table[name], records)]
    settings_lines = [f"- {arm_label(name, model)}: "
                      f"{json.dumps(settings['refiner'], sort_keys=True) if settings.get('refiner') else 'no refiner'}"
                      for name, (_, settings) in arms.items()]
    report = (f"{title}: every arm of {store.path.name}, side by side\n\n" + "\n".join(settings_lines) +
              "\n\nMean ± std over seeds; p: Welch's t-test against the baseline. Minutes per run are the runs' own "
              "wall time, whatever else the machine ran then.\n\n"
              f"{comparison_table(runs, [*metrics, MINUTES], reference=arm_label(BASELINE, model))}\n")
    return report + save_steps_curves(runs, store.directory / COMPARE_STEPS_CURVE, title, steps_metrics)


def compare(folder: Path, baseline: dict, metrics: Sequence[Metric], steps_metrics: Sequence[Metric], title: str,
            model: str | None = None, per_refiner: Sequence[str] = ()) -> Path:
    """A runner's ``--compare``: print ``compare_report`` of the runs in ``folder`` and save
    it as compare.md there; returns its path. UsageError when the folder holds no runs."""
    store = ResultStore(folder, create=False)
    if not store.runs:
        raise UsageError(f"{store.path} holds no runs: run the arms first (the same settings and --out, "
                         "without --compare)")
    report = compare_report(store, baseline, metrics, steps_metrics, title, model, per_refiner)
    print(report)
    path = store.write_markdown(report, COMPARE_REPORT)
    print(f"saved {path}")
    return path
