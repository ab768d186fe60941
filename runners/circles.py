"""Circles (paper section 2.2, Table 1, Figures 2, 3, 5): can a set generator decompose an
image into its circles? The baseline G -> F against G -> SRN -> F, same decoder F.

    python runners/circles.py [--srn [--s0-gradient] [--steps R] [--inner-lr LR] [--momentum M] [--hidden H]]
                              [--epochs E] [--images N] [--preset smoke|paper|auto] [--config FILE]
                              [--seeds N] [--threads N] [--device auto|cpu|cuda|cuda:N]
                              [--data-dir DIR] [--out DIR] [--dry-run]

Trains the baseline (and the SRN arm with --srn; with --s0-gradient also the SRN with
gradient through S0 into G where the preset detaches S0, as the paper preset does) for every seed, prints the share of test
images decomposed per number of circles (Table 1's layout) and the test reconstruction
error, and draws the figures of seed 0 under DIR/<preset>-<images>images-<epochs>epochs/.
"""
import argparse
import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from adapters.circles import ADAPTER  # noqa: E402
from ported.circles import CircleAutoencoder, build_autoencoder  # noqa: E402
from refiners.registry import KINDS  # noqa: E402
from refiners.schedule import fixed_steps, steps_at  # noqa: E402
from refiners.settings import KindSettings  # noqa: E402
from runners import circles_plots as plots  # noqa: E402
from runners.circles_data import Circles, DataError, load_or_generate  # noqa: E402
from runners.circles_train import evaluate, train  # noqa: E402
from runners.common.atomic import replaced_atomically  # noqa: E402
from runners.common.checkpoints import RunCheckpoint  # noqa: E402
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse, positive_int  # noqa: E402
from runners.common.errors import UsageError  # noqa: E402
from runners.common.device import device_here  # noqa: E402
from runners.common.curves import save_curves, save_steps_curves, steps_curve  # noqa: E402
from runners.common.experiment import Command, Experiment, Plan  # noqa: E402
from runners.common.invocation import BASELINE, Invocation, arm_label, arm_labels, refiner_identity  # noqa: E402
from runners.common.paper import paper_table, reference_note, reference_rows  # noqa: E402
from runners.common.results import ResultStore, settings_key  # noqa: E402
from runners.common.runs import Arm  # noqa: E402
from runners.common.settings import frozen, with_overrides  # noqa: E402
from declared.settings import Checked, Count, Index, Positive, Range  # noqa: E402
from runners.common.stats import Metric, comparison_table  # noqa: E402

RUNNER = "circles"
TABLE_COUNTS = range(1, 6)
METRICS = [Metric(f"decomposed_{n}", f"{n} circle{'s' if n > 1 else ''}: % decomposed", scale=100, digits=1)
           for n in TABLE_COUNTS] + [Metric("reconstruction_error", "test reconstruction error (squared, per image)")]
PRESENTATION = ("scale", "figure_images", "interpolation_frames", "tsne_radius", "tsne_step")  # not in any run
REFINER_ONLY = ("detach_initial_set",)  # in the refiner arm's runs only
S0_GRADIENT = "srn-s0-gradient"  # --s0-gradient: the SRN arm with detach_initial_set false
ARM_LABELS = {**arm_labels([BASELINE, *KINDS]), S0_GRADIENT: "SRN, gradient to S0"}


@dataclass(frozen=True)
class Settings(Checked):
    """The runner's keys of a preset (configs/circles.yaml says what each does)."""

    data_seed: Index
    train_images: Count
    test_images: Count
    epochs: Count
    set_size: Count
    element_dims: Count
    batch_size: Count
    lr: Positive
    generator_widths: tuple[int, int, int, int]
    decoder_widths: tuple[int, int, int]
    detach_initial_set: bool
    figure_images: Index
    interpolation_frames: Count
    tsne_radius: Count
    tsne_step: Count
    scale: str = ""

    def __post_init__(self):
        super().__post_init__()
        for name, size in (("generator_widths", 4), ("decoder_widths", 3)):
            widths = tuple(getattr(self, name))
            if len(widths) != size or any(Range(int, 1).problem(width) for width in widths):
                raise ValueError(f"{name} must list {size} widths, each an integer >= 1, got {list(widths)}")
            object.__setattr__(self, name, widths)
        if self.train_images < self.batch_size:
            raise ValueError(f"train_images (--images) must be at least the batch size ({self.batch_size}), "
                             f"got {self.train_images}")


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(prog=f"runners/{RUNNER}.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--images", type=positive_int, default=None,
                        help="training images (default: the preset's; the test set stays the preset's)")
    parser.add_argument("--s0-gradient", action="store_true",
                        help=f"with --srn and a preset that detaches S0 (paper): also the arm {S0_GRADIENT}, "
                             "the SRN with gradient through S0 into G")
    add_common_arguments(parser, RUNNER, uses_edges=ADAPTER.uses_edges)  # its decoder weights no pairs: no GRN
    return parse(parser, argv)


def arm_models(settings: Settings, refiners: Mapping[str, KindSettings],
               s0_gradient: bool = False) -> dict[str, tuple[Settings, KindSettings | None]]:
    """Arm name -> the settings and refiner its models are built with: the baseline, each
    refiner arm, and with ``s0_gradient`` the SRN arm with gradient through S0 (UsageError
    when the SRN arm already has it, or there is no SRN arm)."""
    arms = {BASELINE: (settings, None), **{kind: (settings, refiner) for kind, refiner in refiners.items()}}
    if s0_gradient:
        if "srn" not in refiners:
            raise UsageError("--s0-gradient is a variant of the SRN arm: add --srn")
        if not settings.detach_initial_set:
            raise UsageError("--s0-gradient: this preset's SRN arm already passes gradient to S0 "
                             "(detach_initial_set: false); it adds an arm only where S0 is detached (paper)")
        arms[S0_GRADIENT] = (replace(settings, detach_initial_set=False), refiners["srn"])
    return arms


def arm_identity(settings: Settings, refiner: KindSettings | None) -> dict:
    """The settings that define an arm's runs: the baseline's, and for a refiner arm those
    plus detach_initial_set and the refiner's."""
    values = asdict(settings)
    identity = {key: value for key, value in values.items() if key not in PRESENTATION + REFINER_ONLY}
    if refiner is None:
        return identity
    return {**identity, **{key: values[key] for key in REFINER_ONLY}, "refiner": refiner_identity(refiner)}


def make_model(settings: Settings, refiner: KindSettings | None, device: torch.device) -> CircleAutoencoder:
    """A fresh baseline (refiner None) or refiner-arm model on ``device``, the refiner put in
    by ``adapters.circles`` (it follows its schedule from the training steps in its state:
    none yet, or those of a loaded checkpoint)."""
    model = build_autoencoder(settings.set_size, settings.element_dims, settings.generator_widths,
                              settings.decoder_widths)
    if refiner is not None:
        ADAPTER.install(model, refiner, detach_initial_set=settings.detach_initial_set)
    return model.to(device)


def checkpoint_path(directory: Path, arm: str, identity: dict) -> Path:
    return directory / "models" / f"{arm}-{settings_key(identity)}-seed0.pt"


def make_arm(name: str, identity: dict, settings: Settings, refiner: KindSettings | None, device: torch.device,
             train_data: Circles, test_data: Circles, directory: Path) -> Arm:
    """An arm whose run trains and evaluates one seed (the refiner seeded with it; a
    refiner arm also at 0, 1, r/2 and r steps: ``steps_curve``), keeping the seed-0 model
    for the figures."""
    def run(seed: int, checkpoint: RunCheckpoint) -> dict:
        seeded = None if refiner is None else replace(refiner, seed=seed)
        model = make_model(settings, seeded, device)
        history = train(model, torch.from_numpy(train_data.images), settings.epochs, settings.batch_size,
                        settings.lr, torch.Generator().manual_seed(seed), checkpoint)
        metrics = evaluate(model, test_data, settings.batch_size)
        if seeded is not None:
            def at_steps(count: int) -> dict:
                with fixed_steps(model, count):
                    return evaluate(model, test_data, settings.batch_size)
            metrics["steps_curve"] = steps_curve(at_steps, seeded.steps, dict(metrics) if seeded.schedule is None else None)
        if seed == 0:
            path = checkpoint_path(directory, name, identity)
            path.parent.mkdir(exist_ok=True)
            with replaced_atomically(path) as temporary:
                torch.save(model.state_dict(), temporary)
        return {**metrics, "train_loss": history[-1],
                "curve": [{"epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(history, 1)]}
    return Arm(identity, run)


def load_models(identities: Mapping[str, dict], models_of: Mapping[str, tuple[Settings, KindSettings | None]],
                device: torch.device, directory: Path) -> dict[str, CircleAutoencoder]:
    """Arm name -> its seed-0 model (``identities``: arm -> its identity; ``models_of``:
    arm_models), for those whose checkpoint exists; UsageError for an unreadable one."""
    models = {}
    for name, identity in identities.items():
        path = checkpoint_path(directory, name, identity)
        if not path.exists():
            print(f"no seed-0 model of {name} at {path}: its figures are skipped")
            continue
        settings, refiner = models_of[name]
        model = make_model(settings, None if refiner is None else replace(refiner, seed=0), device)
        try:
            model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        except (OSError, RuntimeError, ValueError) as error:
            raise UsageError(f"cannot read the model {path} ({str(error).splitlines()[0]}): "
                             "delete it and its results.json to retrain") from None
        models[name] = model
    return models


def draw_figures(models: Mapping[str, CircleAutoencoder], test_data: Circles, settings: Settings,
                 directory: Path) -> list[Path]:
    """The figures of the seed-0 models (arm name -> model) under ``directory``; returns
    their paths."""
    paths = []
    shown = [int(i) for i in (test_data.counts > 0).nonzero()[0][: settings.figure_images]]
    for name, model in models.items():
        paths.append(directory / f"decomposition_{name}.png")
        plots.decomposition_grid(model, test_data, shown, paths[-1], ARM_LABELS[name])
    if models:
        labelled = {ARM_LABELS[name]: model for name, model in models.items()}
        paths.append(directory / "responsibility.png")
        plots.responsibility(labelled, paths[-1], settings.interpolation_frames)
        paths.append(directory / "tsne.png")
        plots.tsne(labelled, paths[-1], settings.tsne_radius, settings.tsne_step)
    return paths


def scale_line(args: argparse.Namespace, invocation: Invocation, settings: Settings) -> str:
    """The preset's scale line (and what --images and --epochs changed), which every report starts with."""
    scale = f"preset {invocation.preset}: {settings.scale}"
    if args.epochs or args.images:
        scale += f" (overridden: {settings.train_images} training images, {settings.epochs} epochs)"
    return scale


class CirclesExperiment(Experiment):
    """Table 1: the set autoencoder with and without a refiner, on generated circle images."""

    name = RUNNER
    metrics = steps_metrics = METRICS

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        return parse_args(argv)

    def plan(self, args: argparse.Namespace, invocation: Invocation) -> Plan:
        """The preset with --epochs and --images over it; each arm's models are built from
        ``arm_models`` and identified by ``arm_identity``."""
        settings = frozen(Settings, with_overrides(invocation.config, {"epochs": args.epochs,
                                                                       "train_images": args.images}),
                          f"{invocation.config_path} preset {invocation.preset}")
        models_of = arm_models(settings, invocation.refiners, args.s0_gradient)
        return Plan(settings, {name: arm_identity(*built) for name, built in models_of.items()},
                    f"{invocation.preset}-{settings.train_images}images-{settings.epochs}epochs", models_of)

    def title(self, plan: Plan, invocation: Invocation) -> str:
        return f"Circles, preset {invocation.preset}"

    def data(self, args: argparse.Namespace, invocation: Invocation, plan: Plan,
             store: ResultStore) -> tuple[Circles, Circles]:
        """The training and test sets, after the scale line and any schedule that never reaches
        its arm's steps are printed."""
        settings = plan.settings
        print(scale_line(args, invocation, settings))
        for kind, refiner in invocation.refiners.items():
            training_steps = settings.epochs * (settings.train_images // settings.batch_size)
            last = steps_at(refiner.schedule, training_steps - 1, refiner.steps)
            if last != refiner.steps:
                print(f"note: {arm_label(kind)}'s schedule {refiner.schedule} ends these {training_steps} training "
                      f"steps at {last} inner steps, never its own {refiner.steps}")
        try:
            return (load_or_generate(args.data_dir, settings.data_seed, "train", settings.train_images),
                    load_or_generate(args.data_dir, settings.data_seed, "test", settings.test_images))
        except DataError as error:
            raise UsageError(str(error)) from None

    def arms(self, command: Command) -> dict[str, Arm]:
        train_data, test_data = command.data
        plan = command.plan
        return {name: make_arm(name, plan.identities[name], *plan.arms[name], command.invocation.device, train_data,
                               test_data, command.store.directory) for name in plan.arms}

    def paper_flags(self, args: argparse.Namespace, invocation: Invocation) -> list[str]:
        return super().paper_flags(args, invocation) + (["--s0-gradient"] if args.s0_gradient else [])

    def report(self, command: Command, runs: dict[str, list[dict]], differing: list[str]) -> None:
        args, invocation, plan, store = command.args, command.invocation, command.plan, command.store
        _, test_data = command.data
        directory, scale = store.directory, scale_line(args, invocation, plan.settings)
        published = paper_table(RUNNER, "table_1")
        labels = {name: ARM_LABELS[name] for name in runs}
        table = comparison_table({labels[name]: metrics for name, metrics in runs.items()}, METRICS,
                                 reference=ARM_LABELS[BASELINE], arms_as_rows=False,
                                 paper=reference_rows(published, differing, labels))
        table += "\n\n" + reference_note(published, differing)
        table += save_steps_curves({labels[name]: metrics for name, metrics in runs.items()},
                                   directory / "steps_curve.png", f"Circles, {scale}", METRICS)
        print(table)
        models = load_models(plan.identities, plan.arms, device_here(invocation.device), directory)
        paths = draw_figures(models, test_data, plan.settings, directory)
        save_curves(store, plan.identities, ARM_LABELS, invocation.seeds, f"Circles, {scale}",
                    [Metric("train_loss", "training loss")])
        paths.append(directory / "curves.png")
        command_line = f"python runners/{RUNNER}.py " + shlex.join(invocation.argv)
        text = "\n\n".join([
            "# Circles: % of test images decomposed, by number of circles (paper Table 1)",
            f"`{command_line.strip()}`", scale, table,
            "Figures (seed 0): " + ", ".join(f"`{path.name}`" for path in paths),
        ]) + "\n"
        print(f"saved {store.write_markdown(text)} and {len(paths)} figure(s) in {directory}")


EXPERIMENT = CirclesExperiment()
main = EXPERIMENT.main


if __name__ == "__main__":
    main_guard(main)
