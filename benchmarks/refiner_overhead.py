"""What a refiner costs: one training step of the baseline and of each refiner arm of every
runner, interleaved in one run, and the refiner/baseline ratio beside the paper's
(appendix G: 2-3x for Sort-of-CLEVR and C-SWM, +10% per epoch for CLUTRR and circles).

Each arm is built as its runner builds it, with a preset's settings (default: paper), and
trained on one batch of real data from the project's own generators (the CLUTRR zip for
CLUTRR): the upstream RN(args).train_ (Sort-of-CLEVR), the circles autoencoder's step
(runners.circles_train.train_step), c-swm's ContrastiveSWM.contrastive_loss and Adam as
train.py steps them (Space Invaders, K=3), and clutrr-baselines' Trainer.batchLoss and its
optimisers as run_experiment steps them. Steps of all arms of a runner alternate
(benchmarks.timing.alternating_medians), so every arm sees the same machine.

    python benchmarks/refiner_overhead.py [--preset paper|smoke] [--device auto|cpu|cuda]
        [--repeats 5] [--threads N] [--only circles sort_of_clevr cswm clutrr]
        [--clutrr-data data_db9b8f04.zip] [--data-dir data/]
"""
import argparse
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402

from adapters import clutrr as clutrr_adapter  # noqa: E402
from adapters import cswm as cswm_adapter  # noqa: E402
from benchmarks.timing import alternating_medians  # noqa: E402
from patches import relational_networks, vendor  # noqa: E402
from patches.clutrr import upstream as clutrr_upstream  # noqa: E402
from patches.clutrr.run_config import build_config, first_training_batch, prepare_dictionary  # noqa: E402
from patches.cswm_frames import uint8_utils  # noqa: E402
from runners import circles, clutrr, cswm, sort_of_clevr  # noqa: E402
from runners import circles_data, clutrr_data, cswm_data  # noqa: E402
from runners.circles_train import to_float, train_step  # noqa: E402
from runners.common.cli import DATA_DIR, main_guard  # noqa: E402
from runners.common.device import resolve_device  # noqa: E402
from runners.common.invocation import BASELINE, preset_invocation  # noqa: E402
from runners.common.settings import frozen, with_overrides  # noqa: E402
from runners.sort_of_clevr_data import generate  # noqa: E402
from runners.sort_of_clevr_scenes import SortOfClevr  # noqa: E402
from runners.sort_of_clevr_train import batch_tensors, build_model  # noqa: E402

PAPER_OVERHEAD = {"sort_of_clevr": "2-3x", "cswm": "2-3x", "clutrr": "+10% per epoch", "circles": "+10% per epoch"}
RUNNERS = tuple(PAPER_OVERHEAD)
Steps = dict[str, Callable[[], object]]  # arm name -> one training step


def invocation_of(runner, preset: str, *extra: str, **options):
    """The runner's own resolution of ``preset`` with every refiner arm it offers."""
    kinds = {"clutrr": ["--srn", "--grn"]}.get(runner.RUNNER, ["--srn"])
    return preset_invocation(runner.RUNNER, runner.parse_args, preset, [*kinds, *extra], **options)


def sort_of_clevr_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str) -> Steps:
    """RN(args).train_ on a batch of relational questions of generated images."""
    _, invocation = invocation_of(sort_of_clevr, preset)
    settings = frozen(sort_of_clevr.Settings, invocation.config, "sort_of_clevr preset")
    upstream = relational_networks.checkout()
    split = generate(SortOfClevr(upstream), -(-settings.batch_size // 10), seed=0)
    tensors = batch_tensors(split, "rel", np.arange(settings.batch_size), device)
    module = relational_networks.model_module(upstream)
    steps = {}
    for name, refiner in {BASELINE: None, **invocation.refiners}.items():
        torch.manual_seed(0)
        model, _ = build_model(module, settings.batch_size, settings.lr, device,
                               None if refiner is None else replace(refiner, seed=0))
        model.train()
        steps[name] = lambda model=model: model.train_(*tensors)
    return steps


def circles_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str) -> Steps:
    """The autoencoder's training step on a batch of generated circles images."""
    _, invocation = invocation_of(circles, preset)
    settings = frozen(circles.Settings, invocation.config, "circles preset")
    batch = to_float(torch.from_numpy(circles_data.generate(0, "train", settings.batch_size).images), device)
    steps = {}
    for name, refiner in {BASELINE: None, **invocation.refiners}.items():
        torch.manual_seed(0)
        model = circles.make_model(settings, None if refiner is None else replace(refiner, seed=0), device)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        steps[name] = lambda model=model, optimizer=optimizer: train_step(model, optimizer, batch)
    return steps


def cswm_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str) -> Steps:
    """ContrastiveSWM.contrastive_loss + Adam, as train.py steps them, on a batch of the
    Space Invaders training set (K=3)."""
    args, invocation = invocation_of(cswm, preset, "--env", "space", "--k", "3",
                                     refiner_defaults=cswm.tuned_refiner("space", 3))
    settings = frozen(cswm.Settings, with_overrides(invocation.config, {"env": args.env, "num_objects": args.k}),
                      "cswm preset")
    upstream = vendor.checkout(cswm_adapter.UPSTREAM)
    path = cswm_data.ensure_dataset(upstream, data_dir, settings.env, "train", settings.train_episodes)
    utils = uint8_utils(upstream)
    dataset = utils.StateTransitionsDataset(hdf5_file=str(path))
    rows = [dataset[i] for i in range(settings.batch_size)]
    batch = [torch.as_tensor(np.stack([row[part] for row in rows])).to(device) for part in range(3)]
    modules = vendor.import_modules(upstream, ["modules"]).modules
    steps = {}
    for name, refiner in {BASELINE: None, **invocation.refiners}.items():
        torch.manual_seed(0)
        model = modules.ContrastiveSWM(embedding_dim=settings.embedding_dim, hidden_dim=settings.hidden_dim,
                                       action_dim=settings.action_dim, input_dims=batch[0].shape[1:],
                                       num_objects=settings.num_objects, sigma=0.5, hinge=1.0, ignore_action=False,
                                       copy_action=settings.copy_action, encoder=settings.encoder)
        model.apply(utils.weights_init)
        if refiner is not None:
            cswm_adapter.install(model, replace(refiner, seed=0))
        model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad()
            model.contrastive_loss(*batch).backward()
            optimizer.step()
        steps[name] = step
    return steps


def clutrr_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str) -> Steps:
    """Trainer.batchLoss + the upstream's optimisers, as run_experiment steps them, on the
    first batch of the training stories."""
    _, invocation = invocation_of(clutrr, preset)
    settings = frozen(clutrr.Settings, invocation.config, "clutrr preset")
    dataset = clutrr_data.ensure_dataset(clutrr_source, data_dir)
    folder = clutrr_data.training_subset(dataset, settings.train_rows)
    root, logs = clutrr_data.upstream_root(data_dir), Path(tempfile.mkdtemp(prefix="clutrr-benchmark-"))
    prepare_dictionary(root, folder.name, logs)
    steps = {}
    with clutrr_upstream(root, output=logs / "upstream.log") as modules:
        for name, run in clutrr.arm_runs(settings, invocation.refiners, padding_ablation=False).items():
            config = build_config(modules, folder.name, 0, logs, str(device), 1, run.encoder_dropout, run.l2)
            data, batch = first_training_batch(modules, config, folder, clutrr_data.TRAIN_FILE)
            batch.config = config
            batch.to_device(device)
            torch.manual_seed(0)
            encoder, decoder = modules.net_registry.choose_model(config)
            if run.refiner is not None:
                clutrr_adapter.install(encoder, replace(run.refiner, seed=0), run.set_size, run.padding)
            encoder, decoder = encoder.to(device), decoder.to(device)
            trainer = modules.trainer.Trainer(config.model, encoder, decoder, max_entity_id=data.max_entity_id)
            optimizers, _ = trainer.get_optimizers()
            trainer.train()

            def step(trainer=trainer, optimizers=optimizers, batch=batch):
                for optimizer in optimizers:
                    optimizer.zero_grad()
                _, loss, _ = trainer.batchLoss(batch)
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
            steps[name] = step
    return steps


BUILDERS = {"circles": circles_steps, "sort_of_clevr": sort_of_clevr_steps, "cswm": cswm_steps,
            "clutrr": clutrr_steps}


def synchronised(step: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``step``, waiting for the GPU to finish it."""
    def run():
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("paper", "smoke"), default="paper")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--only", nargs="+", choices=RUNNERS, default=RUNNERS)
    parser.add_argument("--clutrr-data", default=clutrr_data.PUBLIC_COPY, help="data_db9b8f04.zip or its URL")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = ["| runner | arm | seconds per step | x baseline | paper (appendix G) |", "|---|---|---|---|---|"]
    for runner in args.only:
        steps = BUILDERS[runner](args.preset, device, args.data_dir, args.clutrr_data)
        seconds = alternating_medians({name: synchronised(step, device) for name, step in steps.items()},
                                      args.repeats)
        for name, value in seconds.items():
            ratio = "1.00" if name == BASELINE else f"{value / seconds[BASELINE]:.2f}"
            paper = "" if name == BASELINE else PAPER_OVERHEAD[runner]
            rows.append(f"| {runner} | {name} | {value:.4f} | {ratio} | {paper} |")
        print("\n".join(rows[-len(seconds):]), file=sys.stderr, flush=True)  # as each runner is done
    print(f"\n{args.preset} preset, device {device}, {torch.get_num_threads()} threads, median of {args.repeats} "
          f"rounds:\n\n" + "\n".join(rows))


if __name__ == "__main__":
    main_guard(main)
