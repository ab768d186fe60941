"""Sort-of-CLEVR, the paper's section 3.1 and Table 2: the upstream Relational Network
(kimhc6028/relational-networks at the pinned commit) with and without an SRN between its
conv perception stage and the RN, trained as the upstream main.py trains it, on data
from the upstream generator.

    python runners/sort_of_clevr.py [--srn] [--steps r] [--inner-lr a] [--images N]
        [--epochs E] [--clutter] [common options: --preset, --config, --seeds, --device, ...]

The baseline (RN) always runs; --srn adds RN+SRN on the same data and seeds. Each run
reports test accuracy at the epoch with the best validation accuracy, per question type
(with the upstream's always-on output dropout, and with it off), Robustness (Synthetic)
and (Dataset) with the output dropout off, and for RN+SRN the same model evaluated with
0 inner steps (the paper's ablation).
"""
import argparse
import dataclasses
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from adapters.relational_networks import ADAPTER  # noqa: E402
from refiners.registry import KINDS  # noqa: E402
from refiners.settings import KindSettings  # noqa: E402
from patches import relational_networks  # noqa: E402
from runners.common.checkpoints import RunCheckpoint  # noqa: E402
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse, positive_int  # noqa: E402
from runners.common.experiment import Command, Experiment, Plan  # noqa: E402
from runners.common.invocation import BASELINE, Invocation, arm_label, arm_labels, refiner_identity  # noqa: E402
from runners.common.paper import paper_table, reference_note, reference_rows  # noqa: E402
from runners.common.results import ResultStore, settings_key  # noqa: E402
from runners.common.runs import Arm  # noqa: E402
from runners.common.settings import frozen, with_overrides  # noqa: E402
from declared.settings import Checked, Count, Positive  # noqa: E402
from runners.common.stats import Metric, comparison_table  # noqa: E402
from runners.common.curves import at_steps, save_curves, save_steps_curves  # noqa: E402
from runners.sort_of_clevr_plots import CURVE_METRICS, plot_robustness_examples  # noqa: E402
from runners.sort_of_clevr_train import SortOfClevrData, train_and_evaluate  # noqa: E402

RUNNER = "sort_of_clevr"
MODEL = "RN"  # the upstream model: the arms are "RN" and "RN + SRN"
QUESTION_TYPES = [Metric("relational", "Relational", 100), Metric("furthest", "Furthest", 100),
                  Metric("closest", "Closest", 100), Metric("count", "Count", 100),
                  Metric("non_relational", "Non-relational", 100)]
ROBUSTNESS = [Metric("robust_synthetic", "Robustness (Synthetic)", 100),
              Metric("robust_dataset", "Robustness (Dataset)", 100)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog=f"runners/{RUNNER}.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=None, help="training images (default: the preset's)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--clutter", action="store_true",
                        help="5 random background rectangles behind the objects (appendix D.4)")
    add_common_arguments(parser, RUNNER, uses_edges=ADAPTER.uses_edges)
    return parse(parser, argv)


@dataclass(frozen=True)
class Settings(Checked):
    """What both arms share: main.py's batch size and Adam learning rate, the number of
    images of each split, the epochs, the robustness sets (synthetic positions, dataset
    images, rotations) and whether the background is cluttered."""

    batch_size: Count
    lr: Positive
    train_images: Count
    validation_images: Count
    test_images: Count
    epochs: Count
    synthetic_positions: Count
    dataset_images: Count
    rotations: Count
    clutter: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.clutter, bool):
            raise ValueError(f"clutter must be true or false, got {self.clutter!r}")

    @property
    def folder_name(self) -> str:
        """The results subfolder: the settings a reader tells experiments apart by."""
        return f"images{self.train_images}-epochs{self.epochs}" + ("-clutter" if self.clutter else "")


class SortOfClevrExperiment(Experiment):
    """Table 2: the RN with and without a refiner, on images of the upstream generator."""

    name, model = RUNNER, MODEL
    metrics = steps_metrics = QUESTION_TYPES

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        return parse_args(argv)

    def plan(self, args: argparse.Namespace, invocation: Invocation) -> Plan:
        """The preset with --images, --epochs and --clutter over it; each arm is identified
        by the settings (a refiner arm's: its refiner's too)."""
        overrides = {"train_images": args.images, "epochs": args.epochs, "clutter": args.clutter or None}
        settings = frozen(Settings, with_overrides(invocation.config, overrides),
                          f"{invocation.config_path} preset {invocation.preset}")
        baseline = asdict(settings)
        identities = {BASELINE: baseline, **{kind: {**baseline, "refiner": refiner_identity(refiner)}
                                             for kind, refiner in invocation.refiners.items()}}
        return Plan(settings, identities, settings.folder_name)

    def title(self, plan: Plan, invocation: Invocation) -> str:
        return f"Sort-of-CLEVR, preset {invocation.preset}"

    def data(self, args: argparse.Namespace, invocation: Invocation, plan: Plan, store: ResultStore) -> SortOfClevrData:
        upstream = relational_networks.checkout()
        return SortOfClevrData.load(upstream, args.data_dir / RUNNER / upstream.commit[:12], plan.settings)

    def arms(self, command: Command) -> dict[str, Arm]:
        invocation, plan, folder = command.invocation, command.plan, command.store.directory
        model_module = relational_networks.model_module(relational_networks.checkout())

        def arm(name: str) -> Arm:
            def run(seed: int, resume: RunCheckpoint) -> dict:
                checkpoint = folder / "checkpoints" / f"{name}-{settings_key(plan.identities[name])}-seed{seed}.pt"
                refiner = invocation.refiners.get(name)
                return train_and_evaluate(command.data, model_module, plan.settings,
                                          None if refiner is None else dataclasses.replace(refiner, seed=seed),
                                          checkpoint, invocation.device, resume)
            return Arm(plan.identities[name], run)

        print(f"preset {invocation.preset}: {', '.join(arm_labels(list(plan.identities), MODEL).values())} on "
              f"{plan.settings.train_images} images x {plan.settings.epochs} epochs, {len(invocation.seeds)} seed(s), "
              f"device {invocation.device}; results in {folder}")
        return {name: arm(name) for name in plan.identities}

    def report(self, command: Command, runs: dict[str, list[dict]], differing: list[str]) -> None:
        invocation, plan, store, data = command.invocation, command.plan, command.store, command.data
        folder, title = store.directory, self.title(plan, invocation)
        labelled = {arm_label(name, MODEL): arm_runs for name, arm_runs in runs.items()}
        text = tables(labelled, plan.settings, invocation.refiners.get("srn"), invocation.preset,
                      data.generated_for_dataset, differing)
        text += save_steps_curves(labelled, folder / "steps_curve.png", title, QUESTION_TYPES)
        print("\n" + text)
        store.write_markdown(text)
        save_curves(store, plan.identities, arm_labels(list(plan.identities), MODEL), invocation.seeds, title,
                    CURVE_METRICS)
        plot_robustness_examples(data.generator, data.robustness_sets, plan.settings.rotations,
                                 folder / "robustness_examples.png")
        print(f"saved {store.path}, {folder / 'results.md'}, {folder / 'curves.png'}, {folder / 'steps_curve.png'} "
              f"(refiner arms), {folder / 'tensorboard'}, "
              f"{folder / 'robustness_examples.png'}; checkpoints in {folder / 'checkpoints'}")


EXPERIMENT = SortOfClevrExperiment()


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")  # the upstream's, dim=1 is meant
    EXPERIMENT.main(argv)


def tables(runs: dict[str, list[dict]], settings: Settings, refiner: KindSettings | None, preset: str,
           generated_for_dataset: int, differing: list[str]) -> str:
    """Table 2 side by side (``runs``: display label -> metrics per seed), the dropout-off
    accuracies, the 0-step ablation and the notes; the paper's numbers as reference rows
    unless some settings differ from the paper preset's (``differing``)."""
    s, rn, srn = settings, arm_label(BASELINE, MODEL), arm_label("srn", MODEL)
    table_2, ablation_paper = paper_table(RUNNER, "table_2"), paper_table(RUNNER, "zero_step_ablation")
    shown = {name: label for name, label in arm_labels([BASELINE, *KINDS], MODEL).items() if label in runs}
    parts = [
        f"## Sort-of-CLEVR, test accuracy (%) at the best validation epoch and robustness (%)\n\n"
        f"{s.train_images} training, {s.validation_images} validation, {s.test_images} test images; "
        f"{s.epochs} epochs; batch {s.batch_size}, Adam lr {s.lr}"
        + (f"; SRN {refiner.steps} inner steps, inner lr {refiner.inner_lr}" if refiner is not None else "")
        + ("; cluttered background" if s.clutter else "") + "\n",
        comparison_table(runs, QUESTION_TYPES + ROBUSTNESS, reference=rn, arms_as_rows=False,
                         paper=reference_rows(table_2, differing, shown)),
        "\n" + reference_note(table_2, differing),
        "\nAccuracies as the upstream evaluates (its output dropout stays on in eval mode); robustness with "
        "the output dropout off, for both arms.\n",
        "### Test accuracy (%) with the output dropout off\n",
        comparison_table({arm: [{m.key: run[f"{m.key}_no_dropout"] for m in QUESTION_TYPES} for run in arm_runs]
                          for arm, arm_runs in runs.items()}, QUESTION_TYPES, reference=rn, arms_as_rows=False),
    ]
    if runs.get(srn):
        zero = f"{srn}, 0 steps at test"
        ablation = {srn: runs[srn], zero: [at_steps(run["steps_curve"], 0) for run in runs[srn]]}
        parts += [f"\n### Ablation: the {srn} model trained with {refiner.steps} inner steps, evaluated with 0\n",
                  comparison_table(ablation, QUESTION_TYPES[:4], reference=srn, arms_as_rows=False,
                                   paper=reference_rows(ablation_paper, differing, {"srn": srn, "srn, 0 steps at test": zero})),
                  "\n" + reference_note(ablation_paper, differing)]
    seconds = {arm: sum(run["robustness_seconds"] for run in arm_runs) / len(arm_runs)
               for arm, arm_runs in runs.items() if arm_runs}
    parts += [
        f"\nRobustness: the Furthest question about the red shape under {s.rotations} evenly spaced rotations of "
        f"the shape coordinates (re-rendered, never rotated pixels); Synthetic: {s.synthetic_positions} positions "
        f"of the easy configuration, rotated about red; Dataset: {s.dataset_images} easy generator images with "
        f"centres at least 15 px from the border ({generated_for_dataset} generated to find them), rotated about "
        f"the image centre. The paper uses 200 positions, 1,000 images and 720 rotations. Evaluation took "
        + ", ".join(f"{value:.0f} s per run ({arm})" for arm, value in seconds.items()) + ".",
        "Unrotated Furthest accuracy (%): " + "; ".join(
            f"{arm} synthetic {100 * _mean(r, 'synthetic_unrotated_accuracy'):.1f}, "
            f"dataset {100 * _mean(r, 'dataset_unrotated_accuracy'):.1f}" for arm, r in runs.items() if r) + ".",
    ]
    if preset != "paper":
        parts.append(f"Preset {preset}: it proves that the whole path runs (generation, training, evaluation, "
                     "robustness, both arms); with this little data and so few epochs its numbers are not the "
                     "paper's. Run --preset paper on a GPU for Table 2.")
    return "\n".join(parts) + "\n"


def _mean(runs: list[dict], key: str) -> float:
    return sum(run[key] for run in runs) / len(runs)


if __name__ == "__main__":
    main_guard(main)
