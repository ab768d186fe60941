"""CLUTRR's arms for one training step (``runners.common.arm_steps``): the upstream's
encoder and decoder, Trainer and optimisers as run_experiment builds them, the refiner
installed as the runner installs it, on the first batch of the training stories."""
import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from adapters.clutrr import ADAPTER
from patches.clutrr import upstream as clutrr_upstream
from patches.clutrr.run_config import build_config, first_training_batch, prepare_dictionary
from runners import clutrr, clutrr_data
from runners.common.arm_steps import ArmSteps, built_arm, idle, invocation_of, parameter_names, seed_run, seeded_refiners
from runners.common.invocation import BASELINE
from runners.common.settings import frozen, with_overrides

REFINER_PARTS = ("encoder.reader.refiner.",)  # what a refiner adds to the upstream's encoder
# what first_training_batch sets in config.model from the data, as run_experiment does
DATA_SIZES = ("vocab_size", "target_size", "max_nodes", "max_sent_length", "classes")


def build_arms(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
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
                for key in DATA_SIZES:
                    run_config.model[key] = configs[BASELINE].model[key]
            batches = -(-len(data.train_indices) // configs[BASELINE].model.batch_size)
            for name, run in runs.items():
                arms[name] = arm_of(modules, configs[name], run, data, batch, device, seed, batches)
    return arms


def arm_of(modules, config, run, data, batch, device: torch.device, seed: int, batches: int) -> ArmSteps:
    """One CLUTRR arm on ``batch``: built, then stepped as run_experiment's _run_one_epoch."""
    seed_run(seed)
    encoder, decoder = modules.net_registry.choose_model(config)
    refiner = None if run.refiner is None else ADAPTER.install(encoder, run.refiner, run.set_size, run.padding)
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
    return built_arm(model, train, evaluate, unused, batches, REFINER_PARTS)
