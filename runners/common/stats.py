"""Side-by-side tables of arms over seeds: mean ± std and Welch's t-test against a reference arm."""
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from runners.common.paper import Reported


@dataclass(frozen=True)
class Metric:
    """A column (or row) of a table: ``key`` in each run's metrics, shown as ``label``,
    multiplied by ``scale`` (100 for percentages) with ``digits`` decimals."""

    key: str
    label: str
    scale: float = 1.0
    digits: int = 1


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's unequal-variance t-test; NaN when undefined
    (fewer than two values in an arm, or no variance in either)."""
    if len(a) < 2 or len(b) < 2 or (min(a) == max(a) and min(b) == max(b)):
        return math.nan
    from scipy import stats  # here: importing it takes most of a second, which every run's process would pay
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def comparison_table(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    metrics: Sequence[Metric],
    reference: str = "baseline",
    arms_as_rows: bool = True,
    paper: Mapping[str, Mapping[str, Reported]] | None = None,
) -> str:
    """Markdown table of ``runs`` (arm -> one metrics dict per seed): every cell is
    "mean ± std" over seeds, and for every other arm a p-value line (Welch's t-test
    against ``reference``); then a "paper: <arm>" line per arm of ``paper`` (arm ->
    metric key -> the published number, already in the table's units; "-" where it has
    none). Arms are rows and metrics columns (the layout of the paper's C-SWM and CLUTRR
    tables), or the transpose (its Sort-of-CLEVR and Circles tables)."""
    arms = list(runs)
    others = [arm for arm in arms if arm != reference and reference in runs]

    def cell(arm: str, metric: Metric) -> str:
        values = [run[metric.key] * metric.scale for run in runs[arm]]
        if not values:
            return "-"
        mean, std = mean_std(values)
        return f"{mean:.{metric.digits}f} ± {std:.{metric.digits}f}"

    def p_cell(arm: str, metric: Metric) -> str:
        return format_p(welch_p([run[metric.key] for run in runs[arm]], [run[metric.key] for run in runs[reference]]))

    def paper_cell(arm: str, metric: Metric) -> str:
        reported = paper[arm].get(metric.key)
        return "-" if reported is None else reported.text(metric.digits)

    paper = paper or {}
    names = {arm: f"{arm} (n={len(runs[arm])})" for arm in arms}
    p_names = {arm: f"p, {arm} vs {reference}" for arm in others}
    if arms_as_rows:
        header = ["arm", *(metric.label for metric in metrics)]
        rows = [[names[arm], *(cell(arm, m) for m in metrics)] for arm in arms]
        rows += [[p_names[arm], *(p_cell(arm, m) for m in metrics)] for arm in others]
        rows += [[f"paper: {arm}", *(paper_cell(arm, m) for m in metrics)] for arm in paper]
    else:
        header = ["", *(names[arm] for arm in arms), *(p_names[arm] for arm in others), *(f"paper: {arm}" for arm in paper)]
        rows = [[m.label, *(cell(arm, m) for arm in arms), *(p_cell(arm, m) for arm in others),
                 *(paper_cell(arm, m) for arm in paper)] for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
