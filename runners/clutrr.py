"""CLUTRR kinship reasoning (paper section 3.3, appendix F): the relation network (RN) of the
pinned koustuvsinha/clutrr-baselines vs RN + SRN vs RN + GRN, trained on k=2,3,4 stories of
data_db9b8f04 and tested on k=2..10.

    python runners/clutrr.py [--srn] [--grn] [--seeds N] [--preset smoke|paper|auto]
        [--epochs E] [--train-rows N] [--data PATH_OR_URL] [--out DIR] [--threads N] [--data-dir DIR]
    python runners/clutrr.py --padding-ablation [same options]

Every arm is the upstream's own run_experiment on the same data and seeds (the refiners are
inserted by adapters/clutrr.py). For each run the epoch with the best mean test accuracy
on k=2,3,4 is taken, as in the paper; the table shows the accuracy per k at that epoch
and that mean, as mean ± std over seeds, with Welch's t-test against the baseline.
``--padding-ablation`` trains the SRN with the paper's padding to 20 sentences with and
without masks (and with zero refinement steps) to show what unmasked padding does.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import os
import shutil
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from adapters.clutrr import RefinerSettings
from patches import vendor
from patches.clutrr import NAME as UPSTREAM
from runners import clutrr_data
from runners.clutrr_train import RunSettings, prepare_dictionary, train
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, positive_int
from runners.common.experiment import Arm, run_arms
from runners.common.presets import load_preset, resolve_preset
from runners.common.results import ResultStore, atomic_write_text, settings_key
from runners.common.stats import Metric, comparison_table

HASH_SEED = "0"  # the upstream maps entities through the iteration order of sets of names
ACCURACY = [Metric(f"acc_k{k}", f"k={k}", 100, 1) for k in clutrr_data.TEST_KS] + [Metric("best_234", "k=2,3,4", 100, 1)]
ABLATION = [Metric("best_234", "k=2,3,4, best epoch", 100, 1), Metric("final_234", "k=2,3,4, last epoch", 100, 1),
            Metric("best_epoch", "best epoch", 1, 1)]


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srn", action="store_true", help="add the RN + SRN arm")
    parser.add_argument("--grn", action="store_true", help="add the RN + GRN arm")
    parser.add_argument("--padding-ablation", action="store_true",
                        help="instead: the SRN with unmasked / masked padding to 20, with 0 and r steps")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--train-rows", type=positive_int, default=None,
                        help="train on a fixed random subset of this many stories (default: the preset's)")
    parser.add_argument("--data", default=clutrr_data.PUBLIC_COPY,
                        help=f"{clutrr_data.NAME}.zip or its unpacked folder, or a URL (default: the public copy)")
    add_common_arguments(parser, "results/clutrr")
    return parser.parse_args(argv)


def arm_definitions(args, preset: dict) -> dict[str, dict]:
    """Arm name -> the settings that define its runs (besides data, epochs, seed)."""
    def refined(kind, steps, padding="masked"):
        options = preset[kind.lower()]
        return {"refiner": {"kind": kind, "steps": options["steps"] if steps is None else steps,
                            "inner_lr": options["inner_lr"], "set_size": preset["set_size"], "padding": padding}}

    baseline = {"l2": preset["l2"], "refiner": None}
    if args.padding_ablation:
        srn = {"l2": preset["l2"]}
        return {
            "baseline": baseline,
            "pad20 r=0, unmasked": {**srn, **refined("SRN", 0, "naive")},
            "pad20 r=0, pad terms zeroed": {**srn, **refined("SRN", 0, "zeroed")},
            "pad20 r=0, masked": {**srn, **refined("SRN", 0)},
            "SRN, unmasked": {**srn, **refined("SRN", None, "naive")},
            "SRN": {**srn, **refined("SRN", None)},
        }
    arms = {"baseline": baseline}
    if args.srn:
        arms["SRN"] = {"l2": preset["l2"], **refined("SRN", None)}
    if args.grn:
        arms["GRN"] = {"l2": preset["grn_l2"], **refined("GRN", None)}
    return arms


def make_arm(name: str, definition: dict, common: dict, root: Path, runs_dir: Path) -> Arm:
    settings = {**common, **definition}
    refiner = None if definition["refiner"] is None else RefinerSettings(**definition["refiner"])
    run_settings = RunSettings(common["data"], common["epochs"], common["encoder_dropout"], definition["l2"], refiner)

    def run(seed: int) -> dict:
        run_dir = runs_dir / f"{name.replace(' ', '').replace(',', '_').replace('=', '')}-{settings_key(settings)}-seed{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)  # what an interrupted attempt left
        return train(run_settings, seed, root, run_dir, description=f"{name}, seed {seed}")

    return Arm(settings, run)


def plot_accuracy_by_k(runs: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    for arm, metrics in runs.items():
        values = np.array([[run[f"acc_k{k}"] * 100 for k in clutrr_data.TEST_KS] for run in metrics])
        axis.errorbar(clutrr_data.TEST_KS, values.mean(0), yerr=values.std(0, ddof=1) if len(values) > 1 else None,
                      marker="o", capsize=3, label=f"{arm} (n={len(values)})")
    axis.axvspan(1.5, 4.5, color="0.9", zorder=0)
    axis.set(xlabel="k (relations to chain; trained on 2, 3, 4)", ylabel="test accuracy (%)",
             title="CLUTRR, at each run's best epoch on k=2,3,4")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_curves(runs: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    for arm, metrics in runs.items():
        curves = np.array([run["curves"]["mean_234"] for run in metrics]) * 100
        epochs = np.arange(1, curves.shape[1] + 1)
        axis.plot(epochs, curves.mean(0), marker=".", label=f"{arm} (n={len(curves)})")
    axis.set(xlabel="epoch", ylabel="mean test accuracy on k=2,3,4 (%)", title="CLUTRR learning curves (mean over seeds)")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_minutes(store: ResultStore, arms: dict) -> str:
    """"baseline 3.1, SRN 4.2": mean wall minutes of a finished run per arm."""
    parts = []
    for name, arm in arms.items():
        seconds = [run["seconds"] for run in store.runs.values()
                   if run["arm"] == name and settings_key(run["settings"]) == settings_key(arm.settings)]
        if seconds:
            parts.append(f"{name} {np.mean(seconds) / 60:.1f}")
    return ", ".join(parts)


def report(runs: dict, args, common: dict, seeds: int, preset_name: str, per_run: str, seconds: float) -> str:
    rows = common["train_rows"] or "all 15,083"
    lines = [
        "# CLUTRR: " + (" vs ".join(f"RN + {arm}" if arm != "baseline" else "RN" for arm in runs)
                        if not args.padding_ablation else "padding ablation (RN + SRN)"),
        "",
        f"{clutrr_data.NAME}, {rows} training stories (80% train, 20% validation), {common['epochs']} epochs, "
        f"seeds 0..{seeds - 1}, preset {preset_name}, upstream {UPSTREAM} {common['upstream'][:7]}.",
        "",
    ]
    if args.padding_ablation:
        lines += ["Mean test accuracy (%) on k=2,3,4: at each run's best epoch, at its last epoch; and the best epoch.", "",
                  comparison_table(runs, ABLATION)]
    else:
        lines += ["Test accuracy (%) per k at each run's best epoch by mean test accuracy on k=2,3,4 "
                  "(the paper's selection), and that mean.", "", comparison_table(runs, ACCURACY)]
    lines += ["", f"Minutes per run (mean over seeds): {per_run}. This command: {seconds / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    start = time.perf_counter()
    args = parse_args(argv)
    preset_name = resolve_preset(args.preset)
    preset = load_preset("clutrr", preset_name)
    epochs = args.epochs or preset["epochs"]
    rows = args.train_rows or preset["train_rows"]
    seeds = args.seeds or preset["seeds"]
    threads = args.threads or preset["threads"]
    checkout = vendor.checkout(UPSTREAM)
    store = ResultStore(args.out / f"train{rows or 'all'}-epochs{epochs}")
    dataset = clutrr_data.ensure_dataset(args.data, args.data_dir)
    folder = clutrr_data.training_subset(dataset, rows)
    root = clutrr_data.upstream_root(args.data_dir)
    prepare_dictionary(root, folder.name, store.directory / "upstream")
    common = {"data": folder.name, "train_rows": rows, "epochs": epochs,
              "encoder_dropout": preset["encoder_dropout"], "upstream": checkout.commit}
    arms = {name: make_arm(name, definition, common, root, store.directory / "upstream")
            for name, definition in arm_definitions(args, preset).items()}
    runs = run_arms(store, arms, range(seeds), threads)
    text = report(runs, args, common, seeds, preset_name, run_minutes(store, arms), time.perf_counter() - start)
    print("\n" + text)
    if args.padding_ablation:
        atomic_write_text(store.directory / "ablation.md", text)
        plot_curves(runs, store.directory / "ablation_curves.png")
        print(f"saved {store.directory / 'ablation.md'} and ablation_curves.png")
    else:
        store.write_markdown(text)
        plot_curves(runs, store.directory / "curves.png")
        plot_accuracy_by_k(runs, store.directory / "accuracy_by_k.png")
        print(f"saved {store.directory / 'results.md'}, curves.png and accuracy_by_k.png")


def with_fixed_hash_seed() -> None:
    """Re-run this script with PYTHONHASHSEED fixed (the upstream's entity mapping follows the
    iteration order of sets of strings, which Python randomises per process)."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": HASH_SEED})


if __name__ == "__main__":
    with_fixed_hash_seed()
    main_guard(main)
