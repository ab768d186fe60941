"""C-SWM's arms for one training step (``runners.common.arm_steps``): ContrastiveSWM as
train.py builds it, on the first transitions of the Space Invaders training set (K=3)."""
import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader

from adapters.cswm import ADAPTER
from patches import vendor
from patches.cswm_frames import uint8_utils
from runners import cswm, cswm_data
from runners.cswm_train import built_by_train_py
from runners.common.arm_steps import ArmSteps, built_arm, idle, invocation_of, parameter_names, seed_run, seeded_refiners
from runners.common.invocation import BASELINE
from runners.common.settings import frozen, with_overrides

REFINER_PARTS = ("obj_encoder.embed.", "obj_encoder.refiner.")  # what a refiner adds to ContrastiveSWM


def build_arms(preset: str, device: torch.device, data_dir: Path, clutrr_source: str,
               batch_size: int | None = None, refiner_steps: int | None = None, seed: int = 0,
               train_size: int | None = None, config: Path | None = None, kinds: Sequence[str] = (),
               refiner_flags: Sequence[str] = ()) -> dict[str, ArmSteps]:
    """ContrastiveSWM and its Adam built by train.py itself, with the runner's arguments and
    modules (``runners.cswm_train.built_by_train_py``), stepped on the first transitions of
    the Space Invaders training set (K=3) under ``data_dir``, generated there if missing.
    train_step: train.py's step (contrastive_loss, backward, Adam) -> the loss; eval_step:
    contrastive_loss in eval mode; batches_per_epoch: the length of train.py's DataLoader."""
    args, invocation = invocation_of(cswm, preset, refiner_steps, config, "--env", "space", "--k", "3", kinds=kinds,
                                     refiner_flags=refiner_flags,
                                     refiner_defaults=cswm.tuned_refiner("space", 3))
    overrides = {"env": args.env, "num_objects": args.k, "batch_size": batch_size, "train_episodes": train_size}
    settings = frozen(cswm.Settings, with_overrides(invocation.config, overrides), f"cswm preset {preset}")
    upstream = vendor.checkout(ADAPTER.upstream)
    path = cswm_data.ensure_dataset(upstream, data_dir, settings.env, "train", settings.train_episodes)
    loader = DataLoader(uint8_utils(upstream).StateTransitionsDataset(hdf5_file=str(path)),
                        batch_size=settings.batch_size)
    batch = [tensor.to(device) for tensor in next(iter(loader))]
    arms = {}
    for name, refiner in {BASELINE: None, **seeded_refiners(invocation, seed)}.items():
        seed_run(seed)
        with tempfile.TemporaryDirectory(prefix="cswm-arm-steps-") as folder:
            script = built_by_train_py(upstream, path, Path(folder) / name, settings.train, seed, refiner, device)
        model, optimizer = script["model"], script["optimizer"]

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
        arms[name] = built_arm(model, train, evaluate, unused, len(script["train_loader"]), REFINER_PARTS)
    return arms
