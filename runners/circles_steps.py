"""Circles' arms for one training step (``runners.common.arm_steps``): the autoencoder
as the runner builds it, on the first images of the training set."""
from pathlib import Path
from typing import Sequence

import torch

from runners import circles, circles_data
from ported.circles import CircleAutoencoder
from runners.circles_train import to_float, train_step
from runners.common.arm_steps import ArmSteps, built_arm, invocation_of, parameter_names, seed_run, seeded_refiners
from runners.common.invocation import BASELINE
from runners.common.settings import frozen, with_overrides

REFINER_PARTS = ("refiner.", "embed.")  # the parameters a refiner adds to the autoencoder (its H_agg and z projection)


def frozen_parameters(model: CircleAutoencoder) -> set[str]:
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


def build_arms(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
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

        arms[name] = built_arm(model, train, evaluate, frozen_parameters(model),
                               settings.train_images // settings.batch_size, REFINER_PARTS)
    return arms
