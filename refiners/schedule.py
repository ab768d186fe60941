"""A refinement-step schedule for any iterative kind (EfficientMORL, Emami et al., ICML
2021): the number of steps the refiner runs changes along training, usually shrinking so
that inference with few or no steps keeps most of the refined performance.

A schedule is ``[[training_step, steps], ...]``, increasing in training steps: from each
training step on (a training step is one step of an optimizer over the refiner's
parameters), the refiner runs that many steps; before the first, the kind's ``steps``.
``StepCounter`` keeps the count of training steps in the refiner's state (its state_dict),
so a resumed run or a job follows the schedule from where it was; ``fixed_steps`` runs
every refiner of a model at a given step count (the step-count curve of an evaluation).
"""
import contextlib
import weakref
from dataclasses import dataclass
from typing import Annotated, Any, Iterator

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch import nn

from srn.inner_descent import MAX_STEPS


@dataclass(frozen=True)
class IncreasingSchedule:
    """The declaration of a schedule: a non-empty list of [training_step, steps] pairs,
    training steps integers >= 0 and strictly increasing, steps integers in [0, MAX_STEPS].
    On the command line: "0:10,2000:5,4000:0"."""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a schedule ("must be ..., got ..."), or None."""
        def integer(number: Any) -> bool:
            return isinstance(number, int) and not isinstance(number, bool)

        shaped = isinstance(value, (list, tuple)) and len(value) > 0 and all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(integer, pair)) for pair in value)
        if not shaped:
            return f"must be a non-empty list of [training_step, steps] pairs of integers, got {value!r}"
        starts = [start for start, _ in value]
        if starts[0] < 0 or any(later <= earlier for earlier, later in zip(starts, starts[1:])):
            return f"must have training steps >= 0 and strictly increasing, got {value!r}"
        if any(not 0 <= steps <= MAX_STEPS for _, steps in value):
            return f"must have step counts in [0, {MAX_STEPS}], got {value!r}"
        return None

    def parse(self, text: str) -> list[list[int]]:
        """"0:10,2000:0" -> [[0, 10], [2000, 0]] (ValueError if it is not pairs of integers)."""
        pairs = [pair.split(":") for pair in text.split(",")]
        try:
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError
            return [[int(start), int(steps)] for start, steps in pairs]
        except ValueError:
            raise ValueError(f"expected TRAINING_STEP:STEPS,... (e.g. 0:10,2000:0), got {text!r}") from None


Schedule = Annotated[list, IncreasingSchedule()]


def schedule_text(schedule: list[list[int]]) -> str:
    """[[0, 10], [2000, 0]] -> "0:10,2000:0", the text ``IncreasingSchedule.parse`` reads."""
    return ",".join(f"{start}:{steps}" for start, steps in schedule)


def steps_at(schedule: list[list[int]] | None, training_step: int, steps: int) -> int:
    """The step count at ``training_step``: that of the last schedule entry at or before it,
    else ``steps`` (also with no schedule)."""
    current = steps
    for start, scheduled in schedule or ():
        if start > training_step:
            break
        current = scheduled
    return current


class StepCounter(nn.Module):
    """The steps a refiner runs now, with the count of training steps as a buffer
    (``training_step``, in the state_dict; loading a state_dict resumes the count).

    ``watch(parameter)``: every step of a torch optimizer that updates ``parameter`` (one of
    the refiner's) counts one training step; with no schedule nothing is counted, and a
    state_dict without the count loads.
    """

    def __init__(self, steps: int, schedule: list[list[int]] | None):
        super().__init__()
        self.full_steps, self.schedule = steps, schedule
        self.fixed: int | None = None  # fixed_steps: this count whatever the schedule
        self.register_buffer("training_step", torch.zeros((), dtype=torch.long))
        self._count = 0  # training_step, read without a device synchronisation
        self.register_load_state_dict_post_hook(lambda module, keys: module._reread())

    def steps(self) -> int | None:
        """The step count the refiner runs now: the fixed one, else the schedule's; None
        with neither (the refiner's own ``steps``)."""
        if self.fixed is not None:
            return self.fixed
        return None if self.schedule is None else steps_at(self.schedule, self._count, self.full_steps)

    def watch(self, parameter: torch.Tensor) -> None:
        if self.schedule is None:
            return
        counter, watched = weakref.ref(self), weakref.ref(parameter)

        def count(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            module, tensor = counter(), watched()
            if module is not None and tensor is not None and any(
                    tensor is candidate for group in optimizer.param_groups for candidate in group["params"]):
                module.training_step += 1
                module._count += 1

        _drop_hooks_of_dead_counters()  # here, never inside an optimizer step (which iterates over the hooks)
        _COUNTING_HOOKS.append((counter, register_optimizer_step_post_hook(count)))

    def _reread(self) -> None:
        self._count = int(self.training_step)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        """As nn.Module's, but a state_dict without the count (a model saved before refiners
        had step counters) loads into a counter without a schedule, whose count is unused."""
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        key = f"{prefix}training_step"
        if self.schedule is None and key in missing_keys:
            missing_keys.remove(key)

    def extra_repr(self) -> str:
        return f"steps={self.full_steps}, schedule={self.schedule}"


_COUNTING_HOOKS: list[tuple[weakref.ref, Any]] = []  # (a StepCounter, its optimizer hook's handle)


def _drop_hooks_of_dead_counters() -> None:
    """Remove the optimizer hooks of the step counters that no longer exist."""
    for entry in [entry for entry in _COUNTING_HOOKS if entry[0]() is None]:
        entry[1].remove()
        _COUNTING_HOOKS.remove(entry)


def follow_schedule(refiner: nn.Module, steps: int, schedule: list[list[int]] | None) -> nn.Module:
    """Give ``refiner`` (a module that runs ``refiner.steps`` iterations per call) a
    ``StepCounter`` as ``refiner.step_counter`` that sets ``refiner.steps`` before every call
    where it has a schedule or a fixed count; returns ``refiner``."""
    refiner.step_counter = StepCounter(steps, schedule)
    parameter = next(refiner.parameters(), None)
    if parameter is not None:
        refiner.step_counter.watch(parameter)

    def set_steps(module: nn.Module, args: Any) -> None:
        steps = module.step_counter.steps()
        if steps is not None:
            module.steps = steps

    refiner.register_forward_pre_hook(set_steps)
    return refiner


@contextlib.contextmanager
def fixed_steps(model: nn.Module, steps: int) -> Iterator[None]:
    """Within the block every refiner of ``model`` runs ``steps`` steps, whatever its
    schedule; afterwards each has its own steps back."""
    refiners = [module for module in model.modules() if isinstance(getattr(module, "step_counter", None), StepCounter)]
    own = [refiner.steps for refiner in refiners]
    for refiner in refiners:
        refiner.step_counter.fixed = steps
    try:
        yield
    finally:
        for refiner, refiner_steps in zip(refiners, own):
            refiner.step_counter.fixed = None
            refiner.steps = refiner_steps


def step_counts(steps: int) -> list[int]:
    """The step counts of a step-count curve for a refiner of ``steps`` steps r: 0, 1, r/2
    (rounded down) and r, each once, in increasing order."""
    return sorted({0, min(1, steps), steps // 2, steps})
