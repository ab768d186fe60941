"""The refiners' inner loop: r steps of gradient descent on an energy, differentiable."""
from dataclasses import dataclass
from typing import Annotated, Callable, Sequence

import torch

from srn.settings import Checked, Fraction, OneOf, Positive, Range

BACKPROP_MODES = ("unroll", "last")
MAX_STEPS = 1000  # each inner step is a double backward pass per batch: more would not finish
Steps = Annotated[int, Range(int, 0, MAX_STEPS)]
Backprop = Annotated[str, OneOf(BACKPROP_MODES)]


class InnerLossNotFinite(FloatingPointError):
    """The inner loss, or the refined set after the last step, became NaN or infinite
    (usually: the inner learning rate is too high)."""


class InputNotFinite(FloatingPointError):
    """The refiner was handed a NaN or infinite initial set or embedding: what computed it
    (the model before the refiner) diverged; the inner loop is not the cause."""


@dataclass(frozen=True)
class InnerDescent(Checked):
    """The settings of ``descend`` a refiner runs with (ValueError for any other): ``steps``
    r, ``inner_lr``, ``momentum`` of the SGD (0: plain) and ``backprop`` (see ``descend``)."""

    steps: Steps
    inner_lr: Positive
    momentum: Fraction = 0.0
    backprop: Backprop = "unroll"


def descend(
    energy: Callable[..., torch.Tensor],
    variables: Sequence[torch.Tensor],
    constants: Sequence[torch.Tensor | None],
    steps: int,
    inner_lr: float,
    momentum: float,
    backprop: str,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Run ``steps`` steps of v <- v - inner_lr * dE/dv (SGD, optional heavy-ball momentum
    as torch.optim.SGD) on every tensor in ``variables``, where E = energy(*variables,
    *constants) is a scalar.

    With autograd recording, "unroll" keeps the graph of every step (second-order terms
    reach the energy's parameters, the constants and the initial variables); "last"
    runs the first steps without a graph and passes the gradient straight through them to
    the initial variables, keeping the graph of the last step only. Without autograd
    recording (torch.no_grad, torch.inference_mode) the steps still take gradients with
    respect to the variables and return detached tensors with the same values.

    Returns the refined variables and the inner losses [steps], the loss at step i being
    E before the i-th update. Raises InputNotFinite when a variable or constant is not
    finite on entry, InnerLossNotFinite naming the first step whose loss is not, or the
    last step when only the refined variables are not; all checked with one device
    synchronisation after the loop.
    """
    if steps == 0:
        return tuple(variables), torch.zeros(0)
    if torch.is_grad_enabled():
        first_graph_step = 0 if backprop == "unroll" else steps - 1
        refined, losses = _run(energy, variables, constants, steps, inner_lr, momentum, first_graph_step)
    else:
        with torch.inference_mode(False), torch.enable_grad():
            # Clones are ordinary tensors even when the inputs were made in inference mode.
            variables = [v.clone() for v in variables]
            constants = [c.clone() if isinstance(c, torch.Tensor) else c for c in constants]
            refined, losses = _run(energy, variables, constants, steps, inner_lr, momentum, steps)
        refined = tuple(v.detach() for v in refined)
    _check_finite(variables, constants, losses, refined, inner_lr)
    return refined, losses


def _run(energy, variables, constants, steps, inner_lr, momentum, first_graph_step):
    initial = list(variables)
    current = list(variables)
    velocity = [None] * len(current)
    losses = []
    for step in range(steps):
        with_graph = step >= first_graph_step
        if with_graph and step == first_graph_step > 0:
            # Straight-through: values of the current iterate, gradient of the initial one.
            current = [v.detach() + (v0 - v0.detach()) for v, v0 in zip(current, initial)]
        leaves = [v if with_graph and v.requires_grad else v.detach().requires_grad_() for v in current]
        loss = energy(*leaves, *constants)
        grads = torch.autograd.grad(loss, leaves, create_graph=with_graph)
        updated = []
        for i, (leaf, grad) in enumerate(zip(leaves, grads)):
            velocity[i] = grad if velocity[i] is None or momentum == 0 else momentum * velocity[i] + grad
            updated.append(leaf - inner_lr * velocity[i])
        current = updated if with_graph else [v.detach() for v in updated]
        losses.append(loss.detach())
    return tuple(current), torch.stack(losses)


def _all_finite(tensors) -> torch.Tensor:
    """[len] bool: whether each floating-point tensor is finite everywhere."""
    return torch.stack([torch.isfinite(t).all() for t in tensors])


def _check_finite(variables, constants, losses: torch.Tensor, refined, inner_lr: float) -> None:
    """Raise for a non-finite input, inner loss or result (see descend), syncing once."""
    inputs = [t for t in (*variables, *constants) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    inputs_finite, refined_finite = _all_finite(inputs), _all_finite(refined)
    losses_finite = torch.isfinite(losses)
    if bool(torch.cat([inputs_finite, losses_finite, refined_finite]).all()):
        return
    if not inputs_finite.all():
        raise InputNotFinite("the refiner's input (the initial set or the embedding z) is not finite: the model "
                             "before the refiner diverged, not the inner loop (lower the learning rate?)")
    steps = len(losses)
    if not losses_finite.all():
        step = int((~losses_finite).nonzero()[0, 0]) + 1
        raise InnerLossNotFinite(
            f"inner loss is not finite at step {step} of {steps} "
            f"({losses[step - 1].item()}); lower the inner learning rate (now {inner_lr})"
        )
    raise InnerLossNotFinite(f"the refined set is not finite after the last inner step ({steps} of {steps}); "
                             f"lower the inner learning rate (now {inner_lr})")
