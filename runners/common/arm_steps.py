"""An arm of a runner, built as the runner builds it and stepped as the runner's training
loop steps it, on one batch of real data (``ArmSteps``), what every runner's builder
(``runners/<name>_steps.py``, ``runners.registry.arm_builder``) shares, and one block of
training steps timed (``step_cost``). The benchmarks time and count these steps, the GPU
check compares them, reproduce.py forecasts from them, and the tests train every paper
preset one step with them.

A builder: ``build_arms(preset, device, data_dir, clutrr_source, batch_size=None,
refiner_steps=None, seed=0, train_size=None, config=None, kinds=(), refiner_flags=())`` ->
{arm name: ArmSteps}, arm names "baseline" and the refiner kinds': those the preset offers
and each of ``kinds`` the runner can take (with its defaults where the preset has no
section). ``batch_size`` replaces the preset's batch size (CLUTRR: the upstream rn.yaml's);
``refiner_steps`` the inner steps of every refiner arm in every epoch (the runner's --steps,
which drops a preset's schedule), 0 being the ablation that trains as the baseline;
``seed`` is the run's seed (seed_everything before each arm is built, the refiner's
parameters from it); ``train_size`` replaces the preset's training-set size, in the
runner's unit (Sort-of-CLEVR and circles: images, C-SWM: episodes of a dataset under
``data_dir``, CLUTRR: stories, the runner's --train-rows); ``config`` is the presets file
(the runner's --config; default configs/<runner>.yaml); ``refiner_flags`` are more of the
runner's refiner flags (e.g. ["--backprop", "last"]). The caller makes ``device`` torch's
current CUDA device first (runners.common.device.use_device), as the runners do: the
Sort-of-CLEVR RN puts tensors on "cuda".
"""
import contextlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from refiners.registry import KINDS
from refiners.settings import KindSettings
from runners.common import random_states
from runners.common.invocation import preset_invocation
from runners.common.presets import CONFIG_DIR, load_preset
from runners.common.seeding import seed_everything

Step = Callable[[], torch.Tensor]


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
        loop iterates it;
    refiner_parts: the name prefixes of the parameters a refiner adds to the upstream's
        model (its H_agg and z projection; the runner's, whichever the arm).

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
    refiner_parts: tuple[str, ...]


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


def built_arm(model: nn.Module, train: Step, evaluate: Step, frozen_names: set[str], batches_per_epoch: int,
              refiner_parts: tuple[str, ...]) -> ArmSteps:
    """The ArmSteps of an arm just built (its random streams start here)."""
    streams = RunStreams()
    return ArmSteps(model, streams.running(train), streams.running(evaluate), frozenset(frozen_names),
                    batches_per_epoch, refiner_parts)


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


def upstream_parameters(arm: ArmSteps) -> list[tuple[str, nn.Parameter]]:
    """The arm's parameters but those its refiner adds (``refiner_parts``), in registration
    order: that of the baseline's parameters, pair by pair."""
    return [(name, parameter) for name, parameter in arm.model.named_parameters()
            if not name.startswith(arm.refiner_parts)]


def synchronise(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a CUDA device; nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_cost(arm: ArmSteps, steps: int, device: torch.device) -> dict:
    """Seconds per training step of ``arm`` over ``steps`` steps after one warm-up (one
    synchronisation at the end, as training runs), and the peak GPU memory of those steps
    (GB; None on a CPU)."""
    arm.train_step()
    synchronise(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        arm.train_step()
    synchronise(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return {"seconds_per_step": seconds, "peak_memory_gb": peak}
