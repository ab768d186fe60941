"""The Set Refiner Network (SRN; Huang, He, Zhang et al., NeurIPS 2020, Algorithm 1)."""
import torch
from torch import nn

from srn.inner_descent import InnerDescent, descend


class SetRefiner(nn.Module):
    """Refines a proposed set S0 so that it encodes to a data embedding z.

    r steps of S <- S - inner_lr * dL/dS with L = sum over the batch of
    ||encoder(S) - z||^2 (summed, so the inner learning rate does not depend on the batch
    size), where ``encoder`` (H_agg) is a permutation-invariant set encoder called as
    ``encoder(S [B, N, D], mask [B, N] | None) -> [B, E]``.

    backprop: "unroll" differentiates through every step (the paper); "last" keeps the
    graph of the last step only and passes the gradient straight through to S0.
    Gradients reach the encoder, z (so H_embed) and S0 (so the set generator G).

    After each call ``inner_losses`` [steps] holds the inner loss before each step.
    """

    def __init__(
        self,
        encoder: nn.Module,
        steps: int,
        inner_lr: float,
        momentum: float = 0.0,
        backprop: str = "unroll",
    ):
        super().__init__()
        InnerDescent(steps, inner_lr, momentum, backprop)  # ValueError for settings outside its declaration
        self.encoder = encoder
        self.steps = steps
        self.inner_lr = inner_lr
        self.momentum = momentum
        self.backprop = backprop
        self.inner_losses = torch.zeros(0)

    def forward(self, s0: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """s0 [B, N, D], z [B, E], mask [B, N] bool or None -> refined set [B, N, D]."""
        (s,), self.inner_losses = descend(
            self._loss, (s0,), (z, mask), self.steps, self.inner_lr, self.momentum, self.backprop
        )
        return s

    def _loss(self, s: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return (self.encoder(s, mask) - z).pow(2).sum()

    def extra_repr(self) -> str:
        return f"steps={self.steps}, inner_lr={self.inner_lr}, momentum={self.momentum}, backprop={self.backprop!r}"
