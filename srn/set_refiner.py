"""The Set Refiner Network (SRN; Huang, He, Zhang et al., NeurIPS 2020, Algorithm 1)."""
import torch
from torch import nn

from srn import finite_checks
from srn.capture import captured
from srn.inner_descent import InnerDescent, autograd_gradient, descend
from srn.set_encoder import SetEncoder
from srn.set_energy import SetEnergy


class SetRefiner(nn.Module):
    """Refines a proposed set S0 so that it encodes to a data embedding z.

    r steps of S <- S - inner_lr * dL/dS with L = sum over the batch of
    ||encoder(S) - z||^2 (summed, so the inner learning rate does not depend on the batch
    size), where ``encoder`` (H_agg) is a permutation-invariant set encoder called as
    ``encoder(S [B, N, D], mask [B, N] | None) -> [B, E]``.

    backprop: "unroll" differentiates through every step (the paper); "last" keeps the
    graph of the last step only and passes the gradient straight through to S0.
    gradient: "first-order" computes dL/dS in first-order ops (``srn.set_energy``; needs a
    ``SetEncoder``), "autograd" by ``torch.autograd.grad`` (any encoder; the reference).
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
        gradient: str = "first-order",
    ):
        super().__init__()
        InnerDescent(steps, inner_lr, momentum, backprop, gradient)  # ValueError for settings outside its declaration
        if gradient == "first-order" and not isinstance(encoder, SetEncoder):
            raise ValueError(f"gradient 'first-order' needs a SetEncoder, got {type(encoder).__name__} "
                             "(use gradient 'autograd')")
        self.encoder = encoder
        self.steps = steps
        self.inner_lr = inner_lr
        self.momentum = momentum
        self.backprop = backprop
        self.gradient = gradient
        self.inner_losses = torch.zeros(0)

    def forward(self, s0: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """s0 [B, N, D], z [B, E], mask [B, N] bool or None -> refined set [B, N, D]."""
        if self.steps == 0:
            self.inner_losses = torch.zeros(0)
            return s0
        if self.gradient == "first-order":
            s, self.inner_losses = captured(self, self._first_order_loop)(s0, z, mask)
        else:
            (s,), self.inner_losses = descend(autograd_gradient(self._loss, (z, mask)), (s0,), *self._descent())
        finite_checks.queue([s0, z], self.inner_losses, [s], self.inner_lr)
        return s

    def _first_order_loop(self, s0: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (refined set [B, N, D], inner losses [steps]); what ``srn.capture`` compiles."""
        energy = SetEnergy(self.encoder, z, mask, s0.shape[1], scale=-self.inner_lr)
        (s,), losses = descend(energy, (s0,), *self._descent(), lr_folded=True)
        return s, losses

    def _descent(self) -> tuple[int, float, float, str]:
        return self.steps, self.inner_lr, self.momentum, self.backprop

    def _loss(self, s: torch.Tensor, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return (self.encoder(s, mask) - z).pow(2).sum()

    def extra_repr(self) -> str:
        return (f"steps={self.steps}, inner_lr={self.inner_lr}, momentum={self.momentum}, "
                f"backprop={self.backprop!r}, gradient={self.gradient!r}")
