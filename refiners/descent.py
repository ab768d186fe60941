"""The settings of the kinds that refine by inner gradient descent (``srn``, ``grn``): the
inner loop's (declared as ``srn.inner_descent.InnerDescent`` declares them) and H_agg's."""
from dataclasses import dataclass
from typing import Annotated

from refiners.schedule import Schedule
from refiners.settings import SCHEDULE_HELP, KindSettings, described
from srn.inner_descent import Backprop, Gradient, Steps
from declared.settings import Count, Fraction, Index, OneOf, Positive

DESCENT_KINDS = ("srn", "grn")


@dataclass(frozen=True)
class DescentSettings(KindSettings):
    """One inner-gradient-descent refiner: steps r of S <- S - inner_lr * dL/dS (with
    momentum; ``schedule``: r along training, ``refiners.schedule``), backprop through every step ("unroll") or the last ("last"), and H_agg's
    hidden width and FSPool pieces; embedding: the width of z and of H_agg's output (None:
    the adapter's); seed: draws the refiner's parameters (the run's seed; None until a run
    sets it). A value outside a declaration raises ValueError."""

    kind: Annotated[str, OneOf(DESCENT_KINDS)]
    steps: Steps = described("inner steps r")
    inner_lr: Positive = described("inner learning rate")
    schedule: Schedule | None = described(SCHEDULE_HELP, None)
    momentum: Fraction = described("momentum of the inner SGD (0: plain)", 0.0)
    backprop: Backprop = described("through every inner step (unroll) or the last only", "unroll")
    gradient: Gradient = described("dL/dS in first-order ops (first-order: no double backward) or by "
                                   "torch.autograd.grad (autograd: the reference)", "first-order",
                                   saved_before="autograd")
    hidden: Count = described("H_agg's hidden width", 512)
    embedding: Count | None = described("the width of z (default: the upstream's)", None)
    pieces: Count = described("FSPool's pieces", 20)
    seed: Index | None = None

    def summary(self) -> str:
        """"r=10, inner lr 0.05" (with the momentum, the backprop and the schedule where
        they are not plain SGD through every step)."""
        extra = (f", momentum {self.momentum:g}" if self.momentum else "") + (
            f", backprop {self.backprop}" if self.backprop != "unroll" else "") + (
            f", gradient {self.gradient}" if self.gradient != "first-order" else "")
        return self.with_schedule(f"r={self.steps}, inner lr {self.inner_lr:g}{extra}")
