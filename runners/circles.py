"""Circles (paper section 2.2, Table 1, Figures 2, 3, 5): can a set generator decompose an
image into its circles? The baseline G -> F against G -> SRN -> F, same decoder F.

    python runners/circles.py [--srn] [--seeds N] [--preset smoke|paper|auto]
                              [--epochs E] [--images N] [--out DIR] [--threads N] [--data-dir DIR]

Trains the baseline (and the SRN arm with --srn) for every seed, prints the share of test
images decomposed per number of circles (Table 1's layout) and the test reconstruction
error, and draws the figures of seed 0 under DIR/<preset>-<images>images-<epochs>epochs/.
"""
import os
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from runners import circles_figures as figures  # noqa: E402
from runners.circles_dataset import Circles, DataError, load_or_generate  # noqa: E402
from runners.circles_models import CircleAutoencoder, build_autoencoder  # noqa: E402
from runners.circles_training import evaluate, steps_at_epoch, train  # noqa: E402
from runners.common.cli import (ArgumentParser, UsageError, add_common_arguments, main_guard,  # noqa: E402
                                positive_int)
from runners.common.experiment import Arm, run_arms  # noqa: E402
from runners.common.presets import CONFIG_DIR, load_preset, resolve_preset  # noqa: E402
from runners.common.results import ResultStore, settings_key  # noqa: E402
from runners.common.stats import Metric, comparison_table  # noqa: E402

RUNNER = "circles"
TABLE_COUNTS = range(1, 6)
METRICS = [Metric(f"decomposed_{n}", f"{n} circle{'s' if n > 1 else ''}: % decomposed", scale=100, digits=1)
           for n in TABLE_COUNTS] + [Metric("reconstruction_error", "test reconstruction error (squared, per image)")]
SRN_KEYS = ("embedding_dims", "srn_hidden", "n_pieces", "inner_lr", "momentum", "inner_steps", "detach_initial_set")
BASE_KEYS = ("data_seed", "train_images", "test_images", "epochs", "set_size", "element_dims", "batch_size", "lr",
             "generator_widths", "decoder_widths")


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srn", action="store_true", help="add the SRN arm (the baseline always runs)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--images", type=positive_int, default=None,
                        help="training images (default: the preset's; the test set stays the preset's)")
    add_common_arguments(parser, default_out=f"results/{RUNNER}")
    return parser.parse_args(argv)


def settings_of(config: dict, path: Path) -> tuple[dict, dict]:
    """(baseline settings, SRN settings) from a preset; UsageError naming a missing or bad key."""
    try:
        baseline = {key: config[key] for key in BASE_KEYS}
        srn = {**baseline, **{key: config[key] for key in SRN_KEYS}}
    except KeyError as error:
        raise UsageError(f"{path} lacks the setting {error.args[0]!r}") from None
    if not isinstance(srn["inner_steps"], dict) or 0 not in srn["inner_steps"]:
        raise UsageError(f"{path}: inner_steps must map first epochs (from 0) to steps, e.g. {{0: 10, 20: 20}}")
    if baseline["train_images"] < baseline["batch_size"]:
        raise UsageError(f"--images must be at least the batch size ({baseline['batch_size']})")
    return baseline, srn


def make_model(settings: dict) -> CircleAutoencoder:
    """A fresh baseline (no SRN keys in ``settings``) or SRN model, refiner at the steps of
    the last epoch."""
    srn = None
    if "inner_steps" in settings:
        srn = {"embedding_dims": settings["embedding_dims"], "hidden": settings["srn_hidden"],
               "n_pieces": settings["n_pieces"], "inner_lr": settings["inner_lr"], "momentum": settings["momentum"],
               "steps": steps_at_epoch(settings["inner_steps"], settings["epochs"] - 1),
               "detach_initial_set": settings["detach_initial_set"]}
    return build_autoencoder(settings["set_size"], settings["element_dims"], settings["generator_widths"],
                             settings["decoder_widths"], srn)


def checkpoint_path(directory: Path, arm: str, settings: dict) -> Path:
    return directory / "models" / f"{arm}-{settings_key(settings)}-seed0.pt"


def make_arm(arm: str, settings: dict, train_data: Circles, test_data: Circles, directory: Path) -> Arm:
    """An arm whose run trains and evaluates one seed, keeping the seed-0 model for figures."""
    def run(seed: int) -> dict:
        model = make_model(settings)
        history = train(model, torch.from_numpy(train_data.images), settings["epochs"], settings["batch_size"],
                        settings["lr"], torch.Generator().manual_seed(seed), settings.get("inner_steps"))
        metrics = evaluate(model, test_data, settings["batch_size"])
        if seed == 0:
            path = checkpoint_path(directory, arm, settings)
            path.parent.mkdir(exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            torch.save(model.state_dict(), temporary)
            os.replace(temporary, path)
        return {**metrics, "train_loss": history[-1]}
    return Arm(settings, run)


def load_models(arms: dict[str, Arm], directory: Path) -> dict[str, CircleAutoencoder]:
    """The seed-0 models whose checkpoints exist; UsageError for an unreadable one."""
    models = {}
    for name, arm in arms.items():
        path = checkpoint_path(directory, name, arm.settings)
        if not path.exists():
            print(f"no seed-0 model of {name} at {path}: its figures are skipped")
            continue
        model = make_model(arm.settings)
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
        except (OSError, RuntimeError, ValueError) as error:
            raise UsageError(f"cannot read the model {path} ({str(error).splitlines()[0]}): "
                             "delete it and its results.json to retrain") from None
        models[name] = model
    return models


def draw_figures(models: dict[str, CircleAutoencoder], test_data: Circles, config: dict, directory: Path) -> list[Path]:
    """The figures of the seed-0 models under ``directory``; returns their paths."""
    paths = []
    shown = [int(i) for i in (test_data.counts > 0).nonzero()[0][: config["figure_images"]]]
    for name, model in models.items():
        paths.append(directory / f"decomposition_{name}.png")
        figures.decomposition_grid(model, test_data, shown, paths[-1], name)
    if models:
        paths.append(directory / "responsibility.png")
        figures.responsibility(models, paths[-1], config["interpolation_frames"])
        paths.append(directory / "tsne.png")
        figures.tsne(models, paths[-1], config["tsne_radius"], config["tsne_step"])
    return paths


def main(argv: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> None:
    args = parse_args(argv)
    preset = resolve_preset(args.preset)
    config = load_preset(RUNNER, preset, config_dir)
    overrides = {"epochs": args.epochs, "train_images": args.images, "seeds": args.seeds}
    config.update({key: value for key, value in overrides.items() if value is not None})
    baseline, srn = settings_of(config, config_dir / f"{RUNNER}.yaml")
    scale = f"preset {preset}: {config.get('scale', '')}"
    if args.epochs or args.images:
        scale += f" (overridden: {config['train_images']} training images, {config['epochs']} epochs)"
    print(scale)

    directory = args.out / f"{preset}-{config['train_images']}images-{config['epochs']}epochs"
    store = ResultStore(directory)
    try:
        train_data = load_or_generate(args.data_dir, config["data_seed"], "train", config["train_images"])
        test_data = load_or_generate(args.data_dir, config["data_seed"], "test", config["test_images"])
    except DataError as error:
        raise UsageError(str(error)) from None

    arms = {"baseline": make_arm("baseline", baseline, train_data, test_data, directory)}
    if args.srn:
        arms["SRN"] = make_arm("SRN", srn, train_data, test_data, directory)
    runs = run_arms(store, arms, range(config["seeds"]), args.threads or config.get("threads"))

    table = comparison_table(runs, METRICS, reference="baseline", arms_as_rows=False)
    print(table)
    paths = draw_figures(load_models(arms, directory), test_data, config, directory)
    command = "python runners/circles.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = "\n\n".join([
        "# Circles: % of test images decomposed, by number of circles (paper Table 1)",
        f"`{command.strip()}`", scale, table,
        "Figures (seed 0): " + ", ".join(f"`{path.name}`" for path in paths),
    ]) + "\n"
    print(f"saved {store.write_markdown(text)} and {len(paths)} figure(s) in {directory}")


if __name__ == "__main__":
    main_guard(main)
