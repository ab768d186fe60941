"""Sort-of-CLEVR's arms for one training step (``runners.common.arm_steps``): the RN as
the runner builds it, on the first relational questions of the training split."""
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional

from patches import relational_networks
from runners import sort_of_clevr
from runners.common.arm_steps import (ArmSteps, built_arm, forward_outputs, idle, invocation_of, parameter_names,
                                      seed_run, seeded_refiners)
from runners.common.invocation import BASELINE
from runners.common.settings import frozen, with_overrides
from runners.sort_of_clevr_data import QUESTION_KINDS, SPLIT_SEEDS, generate
from runners.sort_of_clevr_scenes import SortOfClevr
from runners.sort_of_clevr_train import batch_tensors, build_model

REFINER_PARTS = ("refiner.",)  # the parameters a refiner adds to the RN (its H_agg and z projection)


def build_arms(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
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
        arms[name] = built_arm(model, train, evaluate, unused, batches, REFINER_PARTS)
    return arms
