"""Sort-of-CLEVR, the paper's section 3.1 and Table 2: the upstream Relational Network
(kimhc6028/relational-networks at the pinned commit) with and without an SRN between its
conv perception stage and the RN, trained as the upstream main.py trains it, on data
from the upstream generator.

    python runners/sort_of_clevr.py [--srn] [--steps r] [--inner-lr a] [--seeds N]
        [--preset smoke|paper|auto] [--images N] [--epochs E] [--clutter] [--out DIR]
        [--threads N] [--data-dir DIR]

The baseline (RN) always runs; --srn adds RN+SRN on the same data and seeds. Each run
reports test accuracy at the epoch with the best validation accuracy, per question type
(with the upstream's always-on output dropout, and with it off), Robustness (Synthetic)
and (Dataset) with the output dropout off, and for RN+SRN the same model evaluated with
0 inner steps (the paper's ablation).
"""
import argparse
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from adapters.relational_networks import inner_steps  # noqa: E402
from patches import relational_networks  # noqa: E402
from runners.common import presets  # noqa: E402
from runners.common.cli import (ArgumentParser, UsageError, add_common_arguments, main_guard,  # noqa: E402
                                non_negative_int, positive_float, positive_int)
from runners.common.experiment import Arm, run_arms  # noqa: E402
from runners.common.results import ResultStore, settings_key  # noqa: E402
from runners.common.stats import Metric, comparison_table  # noqa: E402
from runners.sortofclevr import robustness  # noqa: E402
from runners.sortofclevr.data import load_split  # noqa: E402
from runners.sortofclevr.evaluation import accuracies  # noqa: E402
from runners.sortofclevr.plots import plot_robustness_examples, plot_validation  # noqa: E402
from runners.sortofclevr.scenes import SortOfClevr  # noqa: E402
from runners.sortofclevr.training import MainLoop, SrnSettings, build_model, fit  # noqa: E402

RUNNER = "sort_of_clevr"
BASELINE, SRN = "RN", "RN+SRN"
SETTINGS = ("seeds", "batch_size", "lr", "steps", "inner_lr", "embed_dim", "train_images", "validation_images",
            "test_images", "epochs", "synthetic_positions", "dataset_images", "rotations")
SRN_SETTINGS = ("steps", "inner_lr", "embed_dim")
QUESTION_TYPES = [Metric("relational", "Relational", 100), Metric("furthest", "Furthest", 100),
                  Metric("closest", "Closest", 100), Metric("count", "Count", 100),
                  Metric("non_relational", "Non-relational", 100)]
ROBUSTNESS = [Metric("robust_synthetic", "Robustness (Synthetic)", 100),
              Metric("robust_dataset", "Robustness (Dataset)", 100)]
PAPER = ("paper, Table 2 (100,000 images, 50 epochs, 5 trials), RN / RN+SRN: Relational 95.1 / 96.9, "
         "Furthest 91.4 / 95.9, Closest 93.9 / 94.8, Count 100 / 100, Robustness (Synthetic) 1.5 / 96.7, "
         "(Dataset) 61.3 / 93.2; RN+SRN evaluated with 0 steps: Furthest 96 -> 63, Closest 95 -> 87, Count 100.")
SRN_SEED_OFFSET = 10_000  # the SRN of seed s is initialised from seed s + this


def parse_arguments(argv) -> argparse.Namespace:
    parser = ArgumentParser(prog="runners/sort_of_clevr.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--srn", action="store_true", help="add the RN+SRN arm (same data and seeds)")
    parser.add_argument("--steps", type=non_negative_int, help="SRN inner steps (default: the preset's, 5)")
    parser.add_argument("--inner-lr", type=positive_float, help="SRN inner learning rate (default: the preset's, 0.1)")
    parser.add_argument("--images", type=positive_int, help="training images (default: the preset's)")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (default: the preset's)")
    parser.add_argument("--clutter", action="store_true", help="5 random background rectangles behind the objects (appendix D.4)")
    add_common_arguments(parser, f"results/{RUNNER}")
    args = parser.parse_args(argv)
    if not args.srn and (args.steps is not None or args.inner_lr is not None):
        raise UsageError("--steps and --inner-lr set the SRN arm: add --srn")
    return args


def resolve_settings(args, preset: str, config_dir: Path) -> dict:
    """The preset's settings with the command line's overrides, checked."""
    settings = presets.load_preset(RUNNER, preset, config_dir)
    missing = [key for key in SETTINGS if key not in settings]
    if missing:
        raise UsageError(f"{config_dir / (RUNNER + '.yaml')} preset {preset!r} lacks {', '.join(missing)}")
    overrides = {"seeds": args.seeds, "threads": args.threads, "steps": args.steps, "inner_lr": args.inner_lr,
                 "train_images": args.images, "epochs": args.epochs}
    settings.update({key: value for key, value in overrides.items() if value is not None})
    settings["clutter"] = args.clutter
    return settings


def check_sizes(settings: dict, questions_per_image: int) -> None:
    """The upstream only runs full batches: training and validation need one of each question kind."""
    least = -(-settings["batch_size"] // questions_per_image)
    for key, flag in (("train_images", "--images"), ("validation_images", "validation_images")):
        if settings[key] < least:
            raise UsageError(f"{flag} must be at least {least} (one batch of {settings['batch_size']} questions), "
                             f"got {settings[key]}")


class Experiment:
    """The data, the upstream code and the robustness sets shared by every run."""

    def __init__(self, settings: dict, data_dir: Path, folder: Path):
        self.settings = settings
        upstream = relational_networks.checkout()
        self.model_module = relational_networks.model_module(upstream)
        self.generator = SortOfClevr(upstream)
        check_sizes(settings, self.generator.questions_per_image)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        cache = Path(data_dir) / RUNNER / upstream.commit[:12]
        clutter = settings["clutter"]
        self.splits = {name: load_split(self.generator, cache, name, settings[f"{name}_images"], clutter)
                       for name in ("train", "validation", "test")}
        synthetic = robustness.synthetic_set(self.generator, settings["synthetic_positions"], clutter)
        dataset, self.generated_for_dataset = robustness.dataset_set(self.generator, settings["dataset_images"], cache, clutter)
        self.robustness_sets = [synthetic, dataset]
        self.checkpoints = folder / "checkpoints"

    def arm_settings(self, arm: str) -> dict:
        """What identifies a run of ``arm`` (the baseline's do not include the SRN's)."""
        keys = [key for key in SETTINGS if key != "seeds" and (arm == SRN or key not in SRN_SETTINGS)]
        return {"clutter": self.settings["clutter"], **{key: self.settings[key] for key in keys}}

    def run(self, arm: str, seed: int) -> dict:
        """Train one seed of ``arm`` (called after seeding), evaluate it; returns its metrics."""
        s, test = self.settings, self.splits["test"]
        srn = SrnSettings(s["steps"], s["inner_lr"], s["embed_dim"], seed + SRN_SEED_OFFSET) if arm == SRN else None
        model, refiner = build_model(self.model_module, s["batch_size"], s["lr"], self.device, srn)
        checkpoint = self.checkpoints / f"{arm}-{settings_key(self.arm_settings(arm))}-seed{seed}.pt"
        history, best_epoch = fit(MainLoop(model, self.splits["train"], s["batch_size"], self.device),
                                  self.splits["validation"], s["epochs"], checkpoint)
        metrics = {"best_epoch": best_epoch, "history": history, "checkpoint": checkpoint.name}
        metrics.update(accuracies(model, test, s["batch_size"], self.device))
        with relational_networks.output_dropout_off(model):
            no_dropout = accuracies(model, test, s["batch_size"], self.device)
            metrics.update({f"{key}_no_dropout": value for key, value in no_dropout.items()})
            metrics.update(robustness.timed_evaluation(model, self.generator, self.robustness_sets, s["rotations"],
                                                       s["batch_size"], self.device))
        if refiner is not None:
            with inner_steps(refiner, 0):
                zero_steps = accuracies(model, test, s["batch_size"], self.device)
            metrics.update({f"{key}_zero_steps": value for key, value in zero_steps.items()})
        return metrics


def tables(runs: dict[str, list[dict]], settings: dict, preset: str, generated_for_dataset: int) -> str:
    """Table 2 side by side, the dropout-off accuracies, the 0-step ablation and the notes."""
    s = settings
    parts = [
        f"## Sort-of-CLEVR, test accuracy (%) at the best validation epoch and robustness (%)\n\n"
        f"{s['train_images']} training, {s['validation_images']} validation, {s['test_images']} test images; "
        f"{s['epochs']} epochs; batch {s['batch_size']}, Adam lr {s['lr']}"
        + (f"; SRN {s['steps']} inner steps, inner lr {s['inner_lr']}" if SRN in runs else "")
        + ("; cluttered background" if s["clutter"] else "") + "\n",
        comparison_table(runs, QUESTION_TYPES + ROBUSTNESS, reference=BASELINE, arms_as_rows=False),
        "\nAccuracies as the upstream evaluates (its output dropout stays on in eval mode); robustness with "
        "the output dropout off, for both arms.\n",
        "### Test accuracy (%) with the output dropout off\n",
        comparison_table({arm: [{m.key: run[f"{m.key}_no_dropout"] for m in QUESTION_TYPES} for run in arm_runs]
                          for arm, arm_runs in runs.items()}, QUESTION_TYPES, reference=BASELINE, arms_as_rows=False),
    ]
    if runs.get(SRN):
        ablation = {SRN: runs[SRN], f"{SRN}, 0 steps at test": [
            {m.key: run[f"{m.key}_zero_steps"] for m in QUESTION_TYPES[:4]} for run in runs[SRN]]}
        parts += [f"\n### Ablation: the RN+SRN model trained with {s['steps']} inner steps, evaluated with 0\n",
                  comparison_table(ablation, QUESTION_TYPES[:4], reference=SRN, arms_as_rows=False)]
    seconds = {arm: sum(run["robustness_seconds"] for run in arm_runs) / len(arm_runs)
               for arm, arm_runs in runs.items() if arm_runs}
    parts += [
        f"\nRobustness: the Furthest question about the red shape under {s['rotations']} evenly spaced rotations of "
        f"the shape coordinates (re-rendered, never rotated pixels); Synthetic: {s['synthetic_positions']} positions "
        f"of the easy configuration, rotated about red; Dataset: {s['dataset_images']} easy generator images with "
        f"centres at least 15 px from the border ({generated_for_dataset} generated to find them), rotated about "
        f"the image centre. The paper uses 200 positions, 1,000 images and 720 rotations. Evaluation took "
        + ", ".join(f"{value:.0f} s per run ({arm})" for arm, value in seconds.items()) + ".",
        "Unrotated Furthest accuracy (%): " + "; ".join(
            f"{arm} synthetic {100 * _mean(r, 'synthetic_unrotated_accuracy'):.1f}, "
            f"dataset {100 * _mean(r, 'dataset_unrotated_accuracy'):.1f}" for arm, r in runs.items() if r) + ".",
        PAPER,
    ]
    if preset == "smoke":
        parts.append("Smoke preset: it proves that the whole path runs (generation, training, evaluation, "
                     "robustness, both arms); with this little data and so few epochs its numbers are not the "
                     "paper's. Run --preset paper on a GPU for Table 2.")
    return "\n".join(parts) + "\n"


def _mean(runs: list[dict], key: str) -> float:
    return sum(run[key] for run in runs) / len(runs)


def experiment_folder(out: Path, settings: dict) -> Path:
    return out / (f"images{settings['train_images']}-epochs{settings['epochs']}" + ("-clutter" if settings["clutter"] else ""))


def main(argv=None, config_dir: Path = presets.CONFIG_DIR) -> None:
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")  # the upstream's, dim=1 is meant
    args = parse_arguments(argv)
    preset = presets.resolve_preset(args.preset)
    settings = resolve_settings(args, preset, config_dir)
    folder = experiment_folder(args.out, settings)
    store = ResultStore(folder)
    experiment = Experiment(settings, args.data_dir, folder)
    names = [BASELINE, SRN] if args.srn else [BASELINE]
    arms = {name: Arm(experiment.arm_settings(name), lambda seed, name=name: experiment.run(name, seed)) for name in names}
    print(f"preset {preset}: {', '.join(names)} on {settings['train_images']} images x {settings['epochs']} epochs, "
          f"{settings['seeds']} seed(s), device {experiment.device.type}; results in {folder}")
    runs = run_arms(store, arms, range(settings["seeds"]), settings.get("threads"))
    text = tables(runs, settings, preset, experiment.generated_for_dataset)
    print("\n" + text)
    store.write_markdown(text)
    plot_validation(runs, folder / "validation.png")
    plot_robustness_examples(experiment.generator, experiment.robustness_sets, settings["rotations"],
                             folder / "robustness_examples.png")
    print(f"saved {store.path}, {folder / 'results.md'}, {folder / 'validation.png'}, "
          f"{folder / 'robustness_examples.png'}; checkpoints in {experiment.checkpoints}")


if __name__ == "__main__":
    main_guard(main)
