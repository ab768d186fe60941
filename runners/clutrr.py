"""CLUTRR kinship reasoning (paper section 3.3, appendix F): the relation network (RN) of the
pinned koustuvsinha/clutrr-baselines vs RN + SRN vs RN + GRN, trained on k=2,3,4 stories of
data_db9b8f04 and tested on k=2..10.

    python runners/clutrr.py [--srn] [--grn] [--epochs E] [--train-rows N] [--test-rows N] [--data PATH_OR_URL]
        [common options: --preset --config --seeds --threads --device --data-dir --out --dry-run
         --steps --inner-lr --momentum --backprop --hidden]
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

import argparse
import os
import shutil
import time
from dataclasses import dataclass, replace

import numpy as np

from adapters.clutrr import ADAPTER, PADDINGS
from refiners.registry import KINDS
from refiners.settings import KindSettings
from patches import vendor
from patches.clutrr import NAME as UPSTREAM
from patches.clutrr.run_config import prepare_dictionary
from runners import clutrr_data, clutrr_plots
from runners.common.curves import save_curves, save_steps_curves
from runners.clutrr_train import RunSettings, train
from runners.common.atomic import atomic_write_text
from runners.common.checkpoints import RunCheckpoint, resume_point
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse, positive_int
from runners.common.errors import UsageError
from runners.common.experiment import Command, Experiment, Plan
from runners.common.invocation import BASELINE, Invocation, arm_label, arm_labels, refiner_identity, resolve
from runners.common.paper import paper_table, reference_note, reference_rows
from runners.common.results import ResultStore, settings_key
from runners.common.runs import Arm
from runners.common.settings import frozen, with_overrides
from declared.settings import Checked, Count, Fraction, NonNegative
from runners.common.stats import Metric, comparison_table

RUNNER = "clutrr"
HASH_SEED = "0"  # the upstream maps entities through the iteration order of sets of names
JOB_ENVIRONMENT = {"PYTHONHASHSEED": HASH_SEED}  # a job's process runs the upstream too (runners.common.launch)
MODEL = "RN"  # the upstream model: the arms are "RN", "RN + SRN", "RN + GRN"
ABLATION = (  # the SRN arms of --padding-ablation: (name suffix, steps (None: the refiner's), padding)
    ("pad20 r=0, unmasked", 0, "naive"),
    ("pad20 r=0, pad terms zeroed", 0, "zeroed"),
    ("pad20 r=0, masked", 0, "masked"),
    ("unmasked", None, "naive"),
    (None, None, "masked"),
)
ACCURACY = [Metric(f"acc_k{k}", f"k={k}", 100, 1) for k in clutrr_data.TEST_KS] + [Metric("best_234", "k=2,3,4", 100, 1)]
ABLATION_METRICS = [Metric("best_234", "k=2,3,4, best epoch", 100, 1), Metric("final_234", "k=2,3,4, last epoch", 100, 1),
                    Metric("best_epoch", "best epoch", 1, 1)]


def parse_args(argv):
    parser = ArgumentParser(prog=f"runners/{RUNNER}.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--padding-ablation", action="store_true",
                        help="instead: the SRN with unmasked / masked padding to 20, with 0 and r steps")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--train-rows", type=positive_int, default=None,
                        help="train on a fixed random subset of this many stories (default: the preset's)")
    parser.add_argument("--test-rows", type=positive_int, default=None,
                        help="test on the first N stories of each test file (default: all; a quick look or a test)")
    parser.add_argument("--data", default=clutrr_data.PUBLIC_COPY,
                        help=f"{clutrr_data.NAME}.zip or its unpacked folder, or a URL (default: the public copy)")
    add_common_arguments(parser, RUNNER, uses_edges=ADAPTER.uses_edges)
    return parse(parser, argv)


@dataclass(frozen=True)
class Settings(Checked):
    """The preset's CLUTRR settings (with --epochs, --train-rows, --test-rows): ``epochs``
    training epochs on ``train_rows`` stories (None: all 15,083), tested on the first
    ``test_rows`` stories of each test file (None, the default: all); the LSTM's ``encoder_dropout``;
    the l2 penalty of the baseline and SRN arms (``l2``) and of the GRN arm (``grn_l2``);
    the refiners' ``set_size`` and ``padding`` (adapters.clutrr)."""

    epochs: Count
    train_rows: Count | None
    encoder_dropout: Fraction
    l2: NonNegative
    grn_l2: NonNegative
    set_size: Count
    padding: str
    test_rows: Count | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        if self.train_rows is not None and self.train_rows > clutrr_data.TRAIN_STORIES:
            raise ValueError(f"train_rows (--train-rows) must be in 1..{clutrr_data.TRAIN_STORIES} "
                             f"(the stories of {clutrr_data.TRAIN_FILE}), got {self.train_rows}")


def arm_runs(settings: Settings, refiners: dict[str, KindSettings], padding_ablation: bool) -> dict[str, RunSettings]:
    """Arm name -> what its runs train: the baseline and each refiner arm ("srn", "grn"),
    or for the padding ablation the baseline and the SRN arms of ABLATION ("srn, <suffix>")."""
    data_name = clutrr_data.subset_name(settings.train_rows, settings.test_rows)

    def arm(kind: str | None = None, steps: int | None = None, padding: str | None = None) -> RunSettings:
        refiner = None if kind is None else refiners[kind]
        if refiner is not None and steps is not None:
            refiner = replace(refiner, steps=steps)
        return RunSettings(data_name, settings.epochs, settings.encoder_dropout,
                           settings.grn_l2 if kind == "grn" else settings.l2, refiner,
                           settings.set_size, padding or settings.padding)

    if padding_ablation:
        return {BASELINE: arm(), **{"srn" if suffix is None else f"srn, {suffix}": arm("srn", steps, padding)
                                    for suffix, steps, padding in ABLATION}}
    return {BASELINE: arm(), **{kind: arm(kind) for kind in refiners}}


def identity(run: RunSettings, settings: Settings, upstream_commit: str) -> dict:
    """The settings that identify an arm's runs (besides the seed)."""
    refiner = None if run.refiner is None else {**refiner_identity(run.refiner), "set_size": run.set_size,
                                                "padding": run.padding}
    tested_on = {} if settings.test_rows is None else {"test_rows": settings.test_rows}  # runs before it: all
    return {"data": run.data_name, "train_rows": settings.train_rows, "epochs": run.epochs,
            "encoder_dropout": run.encoder_dropout, "upstream": upstream_commit, "l2": run.l2, "refiner": refiner,
            **tested_on}


def make_arm(name: str, run_settings: RunSettings, arm_identity: dict, root: Path, runs_dir: Path, device: str) -> Arm:
    def run(seed: int, resume: RunCheckpoint) -> dict:
        slug = name.replace(" ", "").replace(",", "_").replace("=", "")
        run_dir = runs_dir / f"{slug}-{settings_key(arm_identity)}-seed{seed}"
        if resume_point(resume.path) is None:
            shutil.rmtree(run_dir, ignore_errors=True)  # what an attempt killed before its first checkpoint left
        return train(run_settings, seed, root, run_dir, device, f"{arm_label(name, MODEL)}, seed {seed}", resume)

    return Arm(arm_identity, run)


def run_minutes(store: ResultStore, identities: dict[str, dict]) -> str:
    """"RN 3.1, RN + SRN 4.2": mean wall minutes of a finished run per arm (arm -> its identity)."""
    parts = []
    for name, arm_identity in identities.items():
        seconds = store.seconds(name, arm_identity)
        if seconds:
            parts.append(f"{arm_label(name, MODEL)} {np.mean(seconds) / 60:.1f}")
    return ", ".join(parts)


def report(runs: dict, padding_ablation: bool, settings: Settings, invocation: Invocation, upstream_commit: str,
           per_run: str, seconds: float, differing: list[str]) -> str:
    """The Markdown report of ``runs`` (arm label -> metrics per finished seed), with the
    paper's numbers as reference rows unless some settings differ from the paper
    preset's (``differing``; the padding ablation has none)."""
    rows = settings.train_rows or "all 15,083"
    tested = "" if settings.test_rows is None else f", tested on the first {settings.test_rows} stories of each test file"
    seeds = invocation.seeds
    lines = [
        "# CLUTRR: " + (" vs ".join(runs) if not padding_ablation else f"padding ablation ({arm_label('srn', MODEL)})"),
        "",
        f"{clutrr_data.NAME}, {rows} training stories (80% train, 20% validation){tested}, {settings.epochs} epochs, "
        f"seeds {seeds.start}..{seeds.stop - 1}, preset {invocation.preset}, upstream {UPSTREAM} {upstream_commit[:7]}.",
        "",
    ]
    reference = arm_label(BASELINE, MODEL)
    if padding_ablation:
        lines += ["Mean test accuracy (%) on k=2,3,4: at each run's best epoch, at its last epoch; and the best epoch.", "",
                  comparison_table(runs, ABLATION_METRICS, reference)]
    else:
        published = paper_table(RUNNER, "section_3_3")
        shown = {name: label for name, label in arm_labels([BASELINE, *KINDS], MODEL).items() if label in runs}
        lines += ["Test accuracy (%) per k at each run's best epoch by mean test accuracy on k=2,3,4 "
                  "(the paper's selection), and that mean.", "",
                  comparison_table(runs, ACCURACY, reference, paper=reference_rows(published, differing, shown)), "",
                  reference_note(published, differing)]
    lines += ["", f"Minutes per run (mean over seeds): {per_run}. This command: {seconds / 60:.1f} min."]
    return "\n".join(lines) + "\n"


class ClutrrExperiment(Experiment):
    """Section 3.3: the upstream's RN with and without a refiner, by its own run_experiment."""

    name, model = RUNNER, MODEL
    metrics, steps_metrics = ACCURACY, clutrr_plots.STEPS_CURVE_METRICS
    per_refiner = ("l2",)  # the GRN arm's is grn_l2

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        return parse_args(argv)

    def resolve(self, args: argparse.Namespace) -> Invocation:
        if args.padding_ablation and args.grn:
            raise UsageError("--padding-ablation trains SRN arms only: drop --grn")
        if args.padding_ablation and args.compare:
            raise UsageError("--compare lays refiner arms beside the baseline; the padding ablation has its own "
                             "table: drop --padding-ablation")
        return resolve(RUNNER, args, kinds=["srn"] if args.padding_ablation else None)

    def plan(self, args: argparse.Namespace, invocation: Invocation) -> Plan:
        """The preset with --epochs, --train-rows and --test-rows over it; what each arm's
        runs train (``arm_runs``) and each arm's identity (``identity``)."""
        overrides = {"epochs": args.epochs, "train_rows": args.train_rows, "test_rows": args.test_rows}
        settings = frozen(Settings, with_overrides(invocation.config, overrides),
                          f"{invocation.config_path} preset {invocation.preset}")
        runs = arm_runs(settings, invocation.refiners, args.padding_ablation)
        commit = vendor.checkout(UPSTREAM).commit
        tested = "" if settings.test_rows is None else f"-test{settings.test_rows}"
        return Plan(settings, {name: identity(run, settings, commit) for name, run in runs.items()},
                    f"train{settings.train_rows or 'all'}-epochs{settings.epochs}{tested}", runs)

    def title(self, plan: Plan, invocation: Invocation) -> str:
        return "CLUTRR"

    def data(self, args: argparse.Namespace, invocation: Invocation, plan: Plan, store: ResultStore) -> Path:
        """The upstream's data root, holding the dataset (its subset of stories) and its
        dictionary."""
        dataset = clutrr_data.ensure_dataset(args.data, args.data_dir)
        data_name = clutrr_data.training_subset(dataset, plan.settings.train_rows, plan.settings.test_rows).name
        root = clutrr_data.upstream_root(args.data_dir)
        prepare_dictionary(root, data_name, store.directory / "upstream")
        return root

    def arms(self, command: Command) -> dict[str, Arm]:
        plan, runs_dir = command.plan, command.store.directory / "upstream"
        return {name: make_arm(name, run, plan.identities[name], command.data, runs_dir, str(command.invocation.device))
                for name, run in plan.arms.items()}

    def paper_flags(self, args: argparse.Namespace, invocation: Invocation) -> list[str] | None:
        return None if args.padding_ablation else super().paper_flags(args, invocation)

    def report(self, command: Command, runs: dict[str, list[dict]], differing: list[str]) -> None:
        args, invocation, plan, store = command.args, command.invocation, command.plan, command.store
        by_label = {arm_label(name, MODEL): metrics for name, metrics in runs.items()}
        text = report(by_label, args.padding_ablation, plan.settings, invocation, vendor.checkout(UPSTREAM).commit,
                      run_minutes(store, plan.identities), time.perf_counter() - command.started, differing)
        steps_figure = "ablation_steps_curve.png" if args.padding_ablation else "steps_curve.png"
        text += save_steps_curves(by_label, store.directory / steps_figure, "CLUTRR", clutrr_plots.STEPS_CURVE_METRICS)
        print("\n" + text)
        labels = arm_labels(list(plan.identities), MODEL)
        if args.padding_ablation:
            atomic_write_text(store.directory / "ablation.md", text)
            save_curves(store, plan.identities, labels, invocation.seeds, "CLUTRR padding ablation",
                        clutrr_plots.CURVE_METRICS, figure="ablation_curves.png")
            print(f"saved {store.directory / 'ablation.md'}, ablation_curves.png, {steps_figure} and tensorboard/")
        else:
            store.write_markdown(text)
            save_curves(store, plan.identities, labels, invocation.seeds, "CLUTRR", clutrr_plots.CURVE_METRICS)
            clutrr_plots.accuracy_by_k(by_label, store.directory / "accuracy_by_k.png")
            print(f"saved {store.directory / 'results.md'}, curves.png, accuracy_by_k.png, {steps_figure} "
                  "(refiner arms) and tensorboard/")


EXPERIMENT = ClutrrExperiment()
main = EXPERIMENT.main


def with_fixed_hash_seed() -> None:
    """Re-run this script with PYTHONHASHSEED fixed (the upstream's entity mapping follows the
    iteration order of sets of strings, which Python randomises per process)."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": HASH_SEED})


if __name__ == "__main__":
    with_fixed_hash_seed()
    main_guard(main)
