"""Learning curves: each run keeps one entry per epoch, ``{"epoch": e, "train_loss": ...,
...}`` (what its training loop reports, and its evaluation where there is one), saved in
results.json with the run; each runner saves them (``save_curves``) per arm, mean ± std
over seeds, as curves.png beside its results.md, and per run as TensorBoard event files
under tensorboard/ (``tensorboard --logdir <results folder>/tensorboard``).

A refiner arm's runs also keep a step-count curve (``steps_curve``): the trained model
evaluated with its refiner at 0, 1, r/2 and r steps, drawn and tabulated over steps
instead of epochs (``save_steps_curves``): the paper's 0-step ablation for every runner."""
import math
import shutil
import textwrap
from pathlib import Path
from typing import Callable, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm import tqdm

from refiners.schedule import step_counts

from runners.common.plots import save_figure
from runners.common.results import ResultStore, settings_key
from runners.common.stats import Metric, mean_std

Curve = list[dict]  # one run's: one dict per epoch, each with "epoch" (a step-count curve: with REFINER_STEPS)
REFINER_STEPS = "refiner_steps"
PANELS_PER_ROW = 3


def save_curves(store: ResultStore, arms: Mapping[str, dict], labels: Mapping[str, str], seeds: range, title: str,
                metrics: Sequence[Metric] | None = None, figure: str = "curves.png") -> dict[str, list[Curve]]:
    """The curves of the finished runs of each arm (arm name -> its settings) among
    ``seeds``, by display label; drawn as ``figure`` (``plot_curves``) and written as event
    files (``write_event_files``) in the store's folder."""
    curves = {labels[name]: store.curves(name, settings, seeds) for name, settings in arms.items()}
    plot_curves(curves, store.directory / figure, title, metrics)
    write_event_files(store, arms, seeds)
    return curves


def write_event_files(store: ResultStore, arms: Mapping[str, dict], seeds: range) -> Path:
    """TensorBoard event files of each finished run's curve, one folder per run named as
    its checkpoints are, ``tensorboard/<arm>-<settings key>-seed<N>``: every numeric key
    of each epoch's entry as a scalar at step = epoch. A run's folder is rewritten whole;
    returns the tensorboard folder."""
    from torch.utils.tensorboard import SummaryWriter  # here: only the launching process writes them
    root = store.directory / "tensorboard"
    for name, settings in arms.items():
        for seed in seeds:
            curve = store.curve(name, settings, seed)
            if curve is None:
                continue
            folder = root / f"{name}-{settings_key(settings)}-seed{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            with SummaryWriter(log_dir=str(folder)) as writer:
                for entry in curve:
                    for key, value in entry.items():
                        if key != "epoch" and is_number(value):
                            writer.add_scalar(key, value, entry["epoch"])
    return root


def is_number(value) -> bool:
    """A curve's value to draw: an int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def epoch_statistics(curves: Sequence[Curve], key: str, x: str = "epoch") -> tuple[list[int], list[float], list[float], list[int]]:
    """The epochs (or other ``x``) at which any of ``curves`` has ``key``, and there the
    mean, the sample std (0 for one run) and the number of runs that have it."""
    values: dict[int, list[float]] = {}
    for curve in curves:
        for entry in curve:
            if entry.get(key) is not None:
                values.setdefault(entry[x], []).append(float(entry[key]))
    epochs = sorted(values)
    stats = [mean_std(values[epoch]) for epoch in epochs]
    return epochs, [mean for mean, _ in stats], [std for _, std in stats], [len(values[epoch]) for epoch in epochs]


def curve_table(curves: Mapping[str, Sequence[Curve]], metrics: Sequence[Metric] | None = None,
                x: str = "epoch") -> str:
    """A Markdown table of the curves: one row per epoch (or other ``x``) at which any arm
    has a value, one column per (metric, arm) with mean ± std over seeds (times ``scale``;
    "-" where the arm has none there)."""
    metrics = list(metrics or curve_keys(curves, x))
    columns = [(metric, arm) for metric in metrics for arm in curves]
    cells: dict[int, dict[int, str]] = {}
    for index, (metric, arm) in enumerate(columns):
        for epoch, mean, std, count in zip(*epoch_statistics(curves[arm], metric.key, x)):
            text = f"{metric.scale * mean:.{metric.digits}f}"
            cells.setdefault(epoch, {})[index] = text + (f" ± {metric.scale * std:.{metric.digits}f}" if count > 1 else "")
    header = f"| {x.replace('_', ' ')} | " + " | ".join(f"{metric.label}, {arm}" for metric, arm in columns) + " |"
    rows = [f"| {epoch} | " + " | ".join(cells[epoch].get(index, "-") for index in range(len(columns))) + " |"
            for epoch in sorted(cells)]
    return "\n".join([header, "|" + "---|" * (len(columns) + 1), *rows])


def curve_keys(curves: Mapping[str, Sequence[Curve]], x: str = "epoch") -> list[Metric]:
    """Every numeric key of the curves besides ``x``, in order of appearance, unscaled."""
    keys: dict[str, None] = {}
    for runs in curves.values():
        for curve in runs:
            for entry in curve:
                keys.update({key: None for key, value in entry.items() if key != x and is_number(value)})
    return [Metric(key, key.replace("_", " ")) for key in keys]


def curve_figure(curves: Mapping[str, Sequence[Curve]], title: str, metrics: Sequence[Metric] | None = None,
                 x: str = "epoch", references: Mapping[str, Sequence[dict]] | None = None) -> Figure:
    """One panel per metric (default: ``curve_keys``) that some arm has a value of: its
    value (times ``scale``) per epoch (or other ``x``), one line per arm (label -> the
    curves of its runs) at the mean over seeds with a ± std band; ``references`` (label ->
    its runs' metrics): a dashed horizontal line per label at the mean of its runs' value,
    where they have one (e.g. the baseline beside the refiner's step-count curves)."""
    metrics = [metric for metric in (metrics or curve_keys(curves, x))
               if any(epoch_statistics(runs, metric.key, x)[0] for runs in curves.values())]
    columns = min(PANELS_PER_ROW, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.6))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, metric in zip(axes, metrics):
        for arm, runs in curves.items():
            epochs, means, stds, counts = epoch_statistics(runs, metric.key, x)
            if not epochs:
                continue
            means = [metric.scale * value for value in means]
            stds = [metric.scale * value for value in stds]
            line, = axis.plot(epochs, means, marker="o" if len(epochs) < 30 else None, markersize=3,
                              label=f"{arm} (n={max(counts)})")
            axis.fill_between(epochs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                              color=line.get_color(), alpha=0.2, linewidth=0)
        for label, runs in (references or {}).items():
            values = [float(run[metric.key]) for run in runs if is_number(run.get(metric.key))]
            if values:
                axis.axhline(metric.scale * sum(values) / len(values), linestyle="--", color="grey",
                             label=f"{label} (n={len(values)})")
        axis.set(title=metric.label, xlabel=x.replace("_", " "))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    for axis in axes[len(metrics):]:
        axis.set_visible(False)
    if metrics:
        axes[0].legend(fontsize="small")
    figure.suptitle(textwrap.fill(f"{title}: mean ± std over seeds", 100), fontsize=11)
    figure.tight_layout()
    return figure


def plot_curves(curves: Mapping[str, Sequence[Curve]], path: Path, title: str,
                metrics: Sequence[Metric] | None = None, x: str = "epoch",
                references: Mapping[str, Sequence[dict]] | None = None) -> Path:
    """Save ``curve_figure`` at ``path``."""
    return save_figure(curve_figure(curves, title, metrics, x, references), path)


def steps_curve(evaluate: Callable[[int], dict], steps: int, at_r: dict | None = None) -> Curve:
    """The step-count curve of a refiner of ``steps`` steps r: ``evaluate(k)`` (the run's
    evaluation with every refiner run at k steps, ``refiners.schedule.fixed_steps``) for k
    in ``refiners.schedule.step_counts(r)`` (0, 1, r/2, r), each as ``{"refiner_steps": k,
    ...}``. ``at_r``: what ``evaluate(r)`` would return, already measured (the run's own
    evaluation, when its refiner has no schedule and so ends at r steps): taken, not
    measured again. A run keeps the curve in its metrics as ``steps_curve``."""
    counts = [count for count in step_counts(steps) if at_r is None or count != steps]
    measured = [{REFINER_STEPS: count, **evaluate(count)}
                for count in tqdm(counts, desc="step-count curve", unit="step count", leave=False)]
    return measured if at_r is None else [*measured, {REFINER_STEPS: steps, **at_r}]


def at_steps(curve: Curve, count: int) -> dict:
    """The entry of the step-count curve ``curve`` at ``count`` refiner steps."""
    return next(entry for entry in curve if entry[REFINER_STEPS] == count)


def save_steps_curves(runs: Mapping[str, Sequence[dict]], path: Path, title: str,
                      metrics: Sequence[Metric]) -> str:
    """The step-count curves of the refiner arms among ``runs`` (label -> each seed's
    metrics), drawn at ``path`` (``plot_curves`` over refiner steps, the arms without a
    refiner as reference lines), as a Markdown section to append to a report (what they
    are, and their table); "" when no run has one."""
    curves = {label: [run["steps_curve"] for run in arm_runs if "steps_curve" in run] for label, arm_runs in runs.items()}
    references = {label: arm_runs for label, arm_runs in runs.items() if not curves[label]}
    curves = {label: arm_curves for label, arm_curves in curves.items() if arm_curves}
    if not curves:
        return ""
    plot_curves(curves, path, f"{title}: evaluated with the refiner at 0, 1, r/2 and r steps", metrics, REFINER_STEPS,
                references)
    return ("\n## Refinement steps at evaluation\n\nEach refiner arm's trained model evaluated with its refiner run at 0, 1, "
            f"r/2 and r steps, whatever it trained with (mean ± std over seeds; {path.name}):\n\n"
            f"{curve_table(curves, metrics, REFINER_STEPS)}\n")
