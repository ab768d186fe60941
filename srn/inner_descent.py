"""The refiners' inner loop: r steps of gradient descent on an energy, differentiable."""
from dataclasses import dataclass
from typing import Annotated, Callable, Sequence

import torch

from declared.settings import Checked, Fraction, OneOf, Positive, Range

BACKPROP_MODES = ("unroll", "last")
GRADIENTS = ("first-order", "autograd")
MAX_STEPS = 1000  # each inner step is a backward pass per batch: more would not finish
Steps = Annotated[int, Range(int, 0, MAX_STEPS)]
Backprop = Annotated[str, OneOf(BACKPROP_MODES)]
Gradient = Annotated[str, OneOf(GRADIENTS)]
# variables -> (the energy, detached [], its gradient with respect to each variable)
LossAndGradients = Callable[[list[torch.Tensor]], tuple[torch.Tensor, Sequence[torch.Tensor]]]


@dataclass(frozen=True)
class InnerDescent(Checked):
    """The settings of ``descend`` a refiner runs with (ValueError for any other): ``steps``
    r, ``inner_lr``, ``momentum`` of the SGD (0: plain), ``backprop`` (see ``descend``) and
    ``gradient``: how dE/dS is computed, "first-order" (the energy's gradient written out in
    first-order ops, ``srn.set_energy``) or "autograd" (``torch.autograd.grad`` with
    ``create_graph``, the reference; its outer backward is a double backward)."""

    steps: Steps
    inner_lr: Positive
    momentum: Fraction = 0.0
    backprop: Backprop = "unroll"
    gradient: Gradient = "first-order"


def autograd_gradient(energy: Callable[..., torch.Tensor], constants: Sequence[torch.Tensor | None]) -> LossAndGradients:
    """The gradient of E = energy(*variables, *constants) by ``torch.autograd.grad``: with
    autograd recording, with ``create_graph`` (the outer backward differentiates it again);
    without, on detached copies of the variables (so inside ``torch.no_grad`` and
    ``torch.inference_mode`` too)."""
    with torch.inference_mode(False):  # tensors made in inference mode cannot be saved for backward
        constants = [c.clone() if isinstance(c, torch.Tensor) and c.is_inference() else c for c in constants]

    def loss_and_gradients(variables: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        with_graph = torch.is_grad_enabled()
        with torch.inference_mode(False), torch.enable_grad():
            leaves = [v if with_graph and v.requires_grad
                      else (v.clone() if v.is_inference() else v.detach()).requires_grad_() for v in variables]
            loss = energy(*leaves, *constants)
            grads = torch.autograd.grad(loss, leaves, create_graph=with_graph)
        return loss.detach(), grads

    return loss_and_gradients


def descend(
    loss_and_gradients: LossAndGradients,
    variables: Sequence[torch.Tensor],
    steps: int,
    inner_lr: float,
    momentum: float,
    backprop: str,
    lr_folded: bool = False,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Run ``steps`` >= 1 steps of v <- v - inner_lr * dE/dv (SGD, optional heavy-ball momentum
    as torch.optim.SGD) on every tensor in ``variables``, where ``loss_and_gradients``
    gives E and dE/dv (``autograd_gradient``, or an energy's first-order gradient); with
    ``lr_folded`` it gives -inner_lr * dE/dv instead (an energy that folds the step into its
    last layer, which saves the update two kernels a step), which the update adds.

    With autograd recording, "unroll" keeps the graph of every step (second-order terms
    reach the energy's parameters, the constants and the initial variables); "last"
    runs the first steps without a graph and passes the gradient straight through them to
    the initial variables, keeping the graph of the last step only. Without autograd
    recording (torch.no_grad, torch.inference_mode) every step runs without a graph and
    the results are detached, with the same values.

    Returns the refined variables and the inner losses [steps], the loss at step i being
    E before the i-th update. No value is read on the host: the caller queues the
    finiteness check (``srn.finite_checks.queue``).
    """
    first_graph_step = (0 if backprop == "unroll" else steps - 1) if torch.is_grad_enabled() else steps
    initial = list(variables)
    current = list(variables)
    velocity: list[torch.Tensor | None] = [None] * len(current)
    losses = []
    for step in range(steps):
        with_graph = step >= first_graph_step
        if with_graph and step == first_graph_step > 0:
            # Straight-through: values of the current iterate, gradient of the initial one.
            current = [v.detach() + (v0 - v0.detach()) for v, v0 in zip(current, initial)]
        with torch.set_grad_enabled(with_graph):
            loss, grads = loss_and_gradients(current)
            for i, grad in enumerate(grads):
                if velocity[i] is None or momentum == 0:
                    velocity[i] = grad
                elif lr_folded:  # one kernel; the other form keeps the autograd path's earlier numbers
                    velocity[i] = torch.add(grad, velocity[i], alpha=momentum)
                else:
                    velocity[i] = momentum * velocity[i] + grad
            current = [v + v_velocity if lr_folded else v - inner_lr * v_velocity
                       for v, v_velocity in zip(current, velocity)]
        losses.append(loss)
    return tuple(current), torch.stack(losses)
