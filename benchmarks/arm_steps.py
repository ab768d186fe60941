"""Every arm of a runner (the baseline and each refiner kind its preset offers), built from a
preset as the runner builds it, with one training step and one evaluation step on one batch
of real data from the project's own generators (the CLUTRR zip for CLUTRR).
benchmarks/refiner_overhead.py times the training steps; tests/benchmarks/test_arm_steps.py
trains every paper preset one step.

``BUILDERS[runner](preset, device, data_dir, clutrr_source, batch_size=None,
refiner_steps=None, seed=0, train_size=None, config=None, kinds=(), refiner_flags=())`` ->
{arm name: ArmSteps}, arm names "baseline" and the refiner kinds': those the preset offers
and each of ``kinds`` the runner can take (with its defaults where the preset has no section). ``batch_size`` replaces the preset's batch size (CLUTRR: the
upstream rn.yaml's); ``refiner_steps`` the inner steps of every refiner arm in every epoch
(the runner's --steps, which drops a preset's schedule), 0 being the ablation that trains as the
baseline; ``seed`` is the run's seed (seed_everything before each arm is built, the
refiner's parameters from it); ``train_size`` replaces the preset's training-set size, in
the runner's unit (Sort-of-CLEVR and circles: images, C-SWM: episodes of a dataset under
``data_dir``, CLUTRR: stories, the runner's --train-rows); ``config`` is the presets
file (the runner's --config; default configs/<runner>.yaml); ``refiner_flags`` are more of
the runner's refiner flags (e.g. ["--backprop", "last"]). The caller makes ``device``
torch's current CUDA device first (runners.common.device.use_device), as the runners do: the
Sort-of-CLEVR RN puts tensors on "cuda".
"""
import contextlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader

from adapters import clutrr as clutrr_adapter
from adapters import cswm as cswm_adapter
from refiners.registry import KINDS
from refiners.settings import KindSettings
from patches import relational_networks, vendor
from patches.clutrr import upstream as clutrr_upstream
from patches.clutrr.run_config import build_config, first_training_batch, prepare_dictionary
from patches.cswm_frames import uint8_utils
from runners import circles, clutrr, cswm, sort_of_clevr
from runners import circles_data, clutrr_data, cswm_data
from runners.circles_models import CircleAutoencoder
from runners.circles_train import to_float, train_step
from runners.common import random_states
from runners.common.invocation import BASELINE, preset_invocation
from runners.common.presets import CONFIG_DIR, load_preset
from runners.common.seeding import seed_everything
from runners.common.settings import frozen, with_overrides
from runners.sort_of_clevr_data import QUESTION_KINDS, SPLIT_SEEDS, generate
from runners.sort_of_clevr_scenes import SortOfClevr
from runners.sort_of_clevr_train import batch_tensors, build_model

Step = Callable[[], torch.Tensor]
# the parameters a refiner adds to each runner's upstream model (its H_agg and z projection), by name prefix
REFINER_PARTS = {
    "sort_of_clevr": ("refiner.",),
    "circles": ("refiner.", "embed."),
    "cswm": ("obj_encoder.embed.", "obj_encoder.refiner."),
    "clutrr": ("encoder.reader.refiner.",),
}
# what first_training_batch sets in config.model from the data, as run_experiment does
CLUTRR_DATA_SIZES = ("vocab_size", "target_size", "max_nodes", "max_sent_length", "classes")


@dataclass(frozen=True)
class ArmSteps:
    """One arm, built and ready to train.

    model: the module whose parameters train (CLUTRR: a ModuleDict of the upstream's
        ``encoder`` and ``decoder``);
    train_step(): one optimiser step as the upstream takes it, in train mode -> the loss it
        minimised (a scalar);
    eval_step(): the upstream's evaluation of the same batch, in eval mode under no_grad ->
        its output (each builder says which);
    frozen: names (as ``model.named_parameters()`` gives them) of the parameters that by
        design get no gradient;
    batches_per_epoch: optimiser steps in one epoch of the training set, as the runner's
        loop iterates it.

    The steps draw their random numbers (dropout, negative samples, entity embeddings) from
    the arm's own python, numpy and torch streams, continued from where building the arm
    left them, as one run of the arm would: steps of different arms can be interleaved in
    any order without changing each other.
    """

    model: nn.Module
    train_step: Step
    eval_step: Step
    frozen: frozenset[str]
    batches_per_epoch: int


class RunStreams:
    """The random generators' states (``runners.common.random_states``) of one run, kept
    apart from the caller's: captured when made, continued by each step run on them."""

    def __init__(self):
        self.states = random_states.captured()

    def running(self, step: Step) -> Step:
        """``step`` run on these streams, the caller's restored afterwards."""
        def run() -> torch.Tensor:
            with random_states.kept():
                random_states.restore(self.states)
                try:
                    return step()
                finally:
                    self.states = random_states.captured()
        return run


def built_arm(model: nn.Module, device: torch.device, train: Step, evaluate: Step, frozen_names: set[str],
              batches_per_epoch: int) -> ArmSteps:
    """The ArmSteps of an arm just built on ``device`` (its random streams start here)."""
    streams = RunStreams()
    return ArmSteps(model, streams.running(train), streams.running(evaluate), frozenset(frozen_names),
                    batches_per_epoch)


def seed_run(seed: int) -> None:
    """Seed as a run of ``seed`` is seeded before its model is built (runners.common.runs),
    keeping the thread count."""
    seed_everything(seed, torch.get_num_threads())


def invocation_of(runner, preset: str, refiner_steps: int | None, config: Path | None, *flags: str,
                  kinds: Sequence[str] = (), refiner_flags: Sequence[str] = (), **options):
    """The runner's own resolution of ``preset`` of ``config`` (None: configs/<runner>.yaml)
    with every refiner arm the preset offers and each of ``kinds`` the runner can take (a
    kind the preset has no section for takes its defaults), with --steps ``refiner_steps``
    and ``refiner_flags`` (e.g. --backprop last): (args, Invocation)."""
    path = config or CONFIG_DIR / f"{runner.RUNNER}.yaml"
    offered = list(load_preset(path, preset).get("refiner") or {})
    steps = [] if refiner_steps is None else ["--steps", str(refiner_steps)]
    argv = [*steps, *refiner_flags, "--config", str(path), *flags]
    args = runner.parse_args(["--preset", preset, *argv])
    taken = [kind for kind in kinds if kind not in offered and (args.uses_edges or not KINDS[kind].refines_edges)]
    return preset_invocation(runner.RUNNER, runner.parse_args, preset, argv, kinds=[*offered, *taken], **options)


def seeded_refiners(invocation, seed: int) -> dict[str, KindSettings]:
    """Each refiner arm's settings with the run's seed, by kind."""
    return {kind: replace(refiner, seed=seed) for kind, refiner in invocation.refiners.items()}


def parameter_names(model: nn.Module, *parts: nn.Module | None) -> set[str]:
    """The names in ``model`` of the parameters of its submodules ``parts`` (None: a part the
    model does not have, e.g. the z projection of a kind that takes no z)."""
    owned = {id(parameter) for part in parts if part is not None for parameter in part.parameters()}
    return {name for name, parameter in model.named_parameters() if id(parameter) in owned}


def idle(refiner: KindSettings | None) -> bool:
    """Whether the arm's refiner takes 0 inner steps: the refined set is then the proposed
    one and z goes unused, so the refiner's own parameters (its H_agg and z projection) get
    no gradient."""
    return refiner is not None and refiner.steps == 0


@contextlib.contextmanager
def forward_outputs(module: nn.Module) -> Iterator[list]:
    """Within the block, the output of every forward call of ``module`` is appended to the
    list yielded."""
    outputs = []
    handle = module.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def sort_of_clevr_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
                        batch_size: int | None = None, refiner_steps: int | None = None, seed: int = 0,
                        train_size: int | None = None, config: Path | None = None, kinds: Sequence[str] = (),
                        refiner_flags: Sequence[str] = ()) -> dict[str, ArmSteps]:
    """The upstream RN(args) with its own Adam (and the SRN, runners.sort_of_clevr_train.
    build_model) on the first relational questions of the training split (images of the
    upstream generator, the split's seed). train_step: RN.train_ -> the nll_loss it
    minimised (train_ itself returns the batch accuracy); eval_step: RN.test_ -> the
    log-probabilities [B, 10] of which it returns the accuracy (the upstream's output
    dropout stays on in eval mode); batches_per_epoch: relational and non-relational
    batches, which MainLoop.train_epoch alternates."""
    _, invocation = invocation_of(sort_of_clevr, preset, refiner_steps, config, kinds=kinds,
                                  refiner_flags=refiner_flags)
    settings = frozen(sort_of_clevr.Settings,
                      with_overrides(invocation.config, {"batch_size": batch_size, "train_images": train_size}),
                      f"sort_of_clevr preset {preset}")
    upstream = relational_networks.checkout()
    scenes = SortOfClevr(upstream)
    split = generate(scenes, -(-settings.batch_size // scenes.questions_per_image), SPLIT_SEEDS["train"])
    images, questions, answers = batch_tensors(split, "rel", np.arange(settings.batch_size), device)
    module = relational_networks.model_module(upstream)
    batches = len(QUESTION_KINDS) * (settings.train_images * scenes.questions_per_image // settings.batch_size)
    arms = {}
    for name, refiner in {BASELINE: None, **seeded_refiners(invocation, seed)}.items():
        seed_run(seed)
        model, srn = build_model(module, settings.batch_size, settings.lr, device, refiner)

        def train(model=model) -> torch.Tensor:
            model.train()
            with forward_outputs(model) as outputs:
                model.train_(images, questions, answers)
            return functional.nll_loss(outputs[0].detach(), answers)

        @torch.no_grad()
        def evaluate(model=model) -> torch.Tensor:
            model.eval()
            with forward_outputs(model) as outputs:
                model.test_(images, questions, answers)
            return outputs[0]

        unused = parameter_names(model, srn) if idle(refiner) else set()
        arms[name] = built_arm(model, device, train, evaluate, unused, batches)
    return arms


def circles_frozen(model: CircleAutoencoder) -> set[str]:
    """The SRN arm's parameters without gradient: with S0 detached (detach_initial_set, the
    official code and the paper preset) G's last layer ``generator.to_element`` only makes
    S0, so it never trains, while G's convolutions learn through z = embed(features); with
    0 inner steps z goes unused as well, and nothing before the decoder trains."""
    if model.refiner is None:
        return set()
    refining = model.refiner.steps > 0
    unused = set() if refining else parameter_names(model, model.refiner, model.embed)
    if model.detach_initial_set:
        unused |= parameter_names(model, model.generator.to_element if refining else model.generator)
    return unused


def circles_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
                  batch_size: int | None = None, refiner_steps: int | None = None, seed: int = 0,
                  train_size: int | None = None, config: Path | None = None, kinds: Sequence[str] = (),
                  refiner_flags: Sequence[str] = ()) -> dict[str, ArmSteps]:
    """The autoencoder (runners.circles.make_model) and Adam on the first images of the
    preset's training set, the SRN following its schedule from the first training step
    (the paper preset's: 10 inner steps; ``refiner_steps`` replaces it). train_step: runners.circles_train.train_step -> the squared error summed over
    the batch; eval_step: the reconstruction [B, 3, 64, 64] (runners.circles_train.evaluate's
    forward pass)."""
    _, invocation = invocation_of(circles, preset, refiner_steps, config, kinds=kinds, refiner_flags=refiner_flags)
    settings = frozen(circles.Settings,
                      with_overrides(invocation.config, {"batch_size": batch_size, "train_images": train_size}),
                      f"circles preset {preset}")
    images = circles_data.generate(settings.data_seed, "train", settings.batch_size).images
    batch = to_float(torch.from_numpy(images), device)
    arms = {}
    for name, refiner in {BASELINE: None, **seeded_refiners(invocation, seed)}.items():
        seed_run(seed)
        model = circles.make_model(settings, refiner, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)

        def train(model=model, optimizer=optimizer) -> torch.Tensor:
            model.train()
            return train_step(model, optimizer, batch).detach()

        @torch.no_grad()
        def evaluate(model=model) -> torch.Tensor:
            model.eval()
            reconstruction, _, _ = model(batch)
            return reconstruction

        arms[name] = built_arm(model, device, train, evaluate, circles_frozen(model),
                               settings.train_images // settings.batch_size)
    return arms


def cswm_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
               batch_size: int | None = None, refiner_steps: int | None = None, seed: int = 0,
               train_size: int | None = None, config: Path | None = None, kinds: Sequence[str] = (),
               refiner_flags: Sequence[str] = ()) -> dict[str, ArmSteps]:
    """ContrastiveSWM as train.py builds it (the SRN installed at construction, as the
    runner hands train.py its modules) and Adam, on the first transitions of the Space
    Invaders training set (K=3) under ``data_dir``, generated there if missing. train_step:
    contrastive_loss, backward, Adam -> the loss; eval_step: contrastive_loss in eval mode;
    batches_per_epoch: the length of train.py's DataLoader."""
    args, invocation = invocation_of(cswm, preset, refiner_steps, config, "--env", "space", "--k", "3", kinds=kinds,
                                     refiner_flags=refiner_flags,
                                     refiner_defaults=cswm.tuned_refiner("space", 3))
    overrides = {"env": args.env, "num_objects": args.k, "batch_size": batch_size, "train_episodes": train_size}
    settings = frozen(cswm.Settings, with_overrides(invocation.config, overrides), f"cswm preset {preset}")
    upstream = vendor.checkout(cswm_adapter.UPSTREAM)
    path = cswm_data.ensure_dataset(upstream, data_dir, settings.env, "train", settings.train_episodes)
    utils = uint8_utils(upstream)
    loader = DataLoader(utils.StateTransitionsDataset(hdf5_file=str(path)), batch_size=settings.batch_size)
    batch = [tensor.to(device) for tensor in next(iter(loader))]
    modules = vendor.import_modules(upstream, ["modules"]).modules
    arms = {}
    for name, refiner in {BASELINE: None, **seeded_refiners(invocation, seed)}.items():
        seed_run(seed)
        built = modules if refiner is None else cswm_adapter.install_on_construction(modules, refiner)
        model = built.ContrastiveSWM(embedding_dim=settings.embedding_dim, hidden_dim=settings.hidden_dim,
                                     action_dim=settings.action_dim, input_dims=batch[0].shape[1:],
                                     num_objects=settings.num_objects, sigma=0.5, hinge=1.0, ignore_action=False,
                                     copy_action=settings.copy_action, encoder=settings.encoder).to(device)
        model.apply(utils.weights_init)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)

        def train(model=model, optimizer=optimizer) -> torch.Tensor:
            model.train()
            optimizer.zero_grad()
            loss = model.contrastive_loss(*batch)
            loss.backward()
            optimizer.step()
            return loss.detach()

        @torch.no_grad()
        def evaluate(model=model) -> torch.Tensor:
            model.eval()
            return model.contrastive_loss(*batch)

        unused = parameter_names(model, model.obj_encoder.embed, model.obj_encoder.refiner) if idle(refiner) else set()
        arms[name] = built_arm(model, device, train, evaluate, unused, len(loader))
    return arms


def clutrr_steps(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
                 batch_size: int | None = None, refiner_steps: int | None = None, seed: int = 0,
                 train_size: int | None = None, config: Path | None = None, kinds: Sequence[str] = (),
                 refiner_flags: Sequence[str] = ()) -> dict[str, ArmSteps]:
    """The upstream's encoder and decoder (net_registry.choose_model, the refiner installed
    as the runner installs it), Trainer and optimisers, as run_experiment builds them, on
    the first batch of the training stories (the data processed once for all arms).
    train_step: Trainer.batchLoss, backward, run_experiment's gradient clipping, the
    optimisers -> the loss; eval_step: Trainer.batchLoss in eval mode -> the loss;
    batches_per_epoch: the upstream loader's batches of the training split (the last one
    partial)."""
    _, invocation = invocation_of(clutrr, preset, refiner_steps, config, kinds=kinds, refiner_flags=refiner_flags)
    settings = frozen(clutrr.Settings, with_overrides(invocation.config, {"train_rows": train_size}),
                      f"clutrr preset {preset}")
    folder = clutrr_data.training_subset(clutrr_data.ensure_dataset(clutrr_source, data_dir), settings.train_rows)
    root = clutrr_data.upstream_root(data_dir)
    runs = clutrr.arm_runs(settings, seeded_refiners(invocation, seed), padding_ablation=False)
    arms = {}
    with tempfile.TemporaryDirectory(prefix="clutrr-arm-steps-") as logs:
        logs = Path(logs)
        prepare_dictionary(root, folder.name, logs)
        with clutrr_upstream(root, output=logs / "upstream.log") as modules:
            configs = {name: build_config(modules, folder.name, seed, logs, str(device), 1, run.encoder_dropout,
                                          run.l2) for name, run in runs.items()}
            if batch_size is not None:
                for run_config in configs.values():
                    run_config.model.batch_size = batch_size
            seed_run(seed)  # the upstream splits training and validation stories with numpy's generator
            data, batch = first_training_batch(modules, configs[BASELINE], folder, clutrr_data.TRAIN_FILE)
            batch.to_device(device)
            for run_config in configs.values():
                for key in CLUTRR_DATA_SIZES:
                    run_config.model[key] = configs[BASELINE].model[key]
            batches = -(-len(data.train_indices) // configs[BASELINE].model.batch_size)
            for name, run in runs.items():
                arms[name] = _clutrr_arm(modules, configs[name], run, data, batch, device, seed, batches)
    return arms


def _clutrr_arm(modules, config, run, data, batch, device: torch.device, seed: int, batches: int) -> ArmSteps:
    """One CLUTRR arm on ``batch``: built, then stepped as run_experiment's _run_one_epoch."""
    seed_run(seed)
    encoder, decoder = modules.net_registry.choose_model(config)
    refiner = None if run.refiner is None else clutrr_adapter.install(encoder, run.refiner, run.set_size, run.padding)
    encoder, decoder = encoder.to(device), decoder.to(device)
    trainer = modules.trainer.Trainer(config.model, encoder, decoder, max_entity_id=data.max_entity_id)
    optimizers, _ = trainer.get_optimizers()
    model = nn.ModuleDict({"encoder": encoder, "decoder": decoder})
    clip = config.model.optimiser.clip

    def train() -> torch.Tensor:
        trainer.train()
        batch.config = config
        for optimizer in optimizers:
            optimizer.zero_grad()
        _, loss, _ = trainer.batchLoss(batch)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), clip)
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), clip)
        for optimizer in optimizers:
            optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def evaluate() -> torch.Tensor:
        trainer.eval()
        batch.config = config
        _, loss, _ = trainer.batchLoss(batch)
        return loss

    unused = parameter_names(model, refiner) if idle(run.refiner) else set()
    return built_arm(model, device, train, evaluate, unused, batches)


def upstream_parameters(runner: str, arm: ArmSteps) -> list[tuple[str, nn.Parameter]]:
    """The arm's parameters but those its refiner adds (REFINER_PARTS), in registration
    order: that of the baseline's parameters, pair by pair."""
    return [(name, parameter) for name, parameter in arm.model.named_parameters()
            if not name.startswith(REFINER_PARTS[runner])]


BUILDERS = {"sort_of_clevr": sort_of_clevr_steps, "circles": circles_steps, "cswm": cswm_steps,
            "clutrr": clutrr_steps}
