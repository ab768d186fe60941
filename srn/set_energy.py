"""The SRN's energy and its gradient in first-order ops: L(S) = sum over the batch of
||H_agg(S) - z||^2 for H_agg a ``SetEncoder``, and dL/dS written out by hand (the MLP's
Linear and ReLU backward, the division by the set size, FSPool's weights scattered back
through the sort permutation).

An inner step built from these ops is an ordinary differentiable function of S, z and
H_agg's parameters, so the outer backward through r steps is a first-order backward: no
double backward, half the kernels of ``torch.autograd.grad(create_graph=True)``, and a
loop that ``torch.compile`` can capture whole. It equals the autograd gradient up to
floating-point rounding (the division by the set size is folded into FSPool's weights, the
pooled sum is taken in the elements' order).
"""
import torch

from srn.fspool import set_sizes
from srn.set_encoder import SetEncoder


class SetEnergy:
    """L and dL/dS for one batch of sets with one mask and one embedding z.

    Built once per refiner call: what depends only on the set sizes and H_agg's parameters
    (FSPool's weight of each rank divided by the set size, the last layer's weight times
    the 2 of d||r||^2/dr and ``scale``) is computed here, not at every inner step. The
    gradient comes out times ``scale`` (-inner_lr: the inner step itself, at no extra op).
    """

    def __init__(self, encoder: SetEncoder, z: torch.Tensor, mask: torch.Tensor | None, n_max: int,
                 scale: float = 1.0):
        """z [B, E], mask [B, N] bool or None, n_max = N."""
        self.first, _, self.second, _, self.third = encoder.mlp
        sizes = set_sizes(mask, z.shape[0], n_max, z.dtype, z.device)  # [B]
        self.rank_weights = encoder.pool.rank_weights(sizes, n_max) / sizes.clamp(min=1)[:, None, None]  # [B, N, E]
        self.padding = None if mask is None else ~mask.unsqueeze(-1)  # [B, N, 1]
        self.scaled_last = (2 * scale) * self.third.weight  # [E, H]
        self.minus_z = -z  # [B, E]: added, so that the outer backward needs no negation per step

    def __call__(self, variables: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor]]:
        """[S [B, N, D]] -> (L, detached [], (scale * dL/dS [B, N, D],))."""
        (s,) = variables
        hidden_first = torch.relu(self.first(s))  # [B, N, H]
        hidden_second = torch.relu(self.second(hidden_first))  # [B, N, H]
        out = self.third(hidden_second)  # [B, N, E], before the division by the set size
        with torch.no_grad():
            ranked = out if self.padding is None else out.masked_fill(self.padding, float("-inf"))
            order = ranked.argsort(dim=1, descending=True)  # [B, N, E]: element of each rank
        # Each element's FSPool weight (0 for padding): H_agg(S) = sum_i out_i * weight_i.
        element_weights = self.rank_weights.new_zeros(out.shape).scatter(1, order, self.rank_weights)
        residual = (out * element_weights).sum(dim=1) + self.minus_z  # [B, E]
        with torch.no_grad():
            loss = torch.dot(residual.flatten(), residual.flatten())
        grad = (element_weights * residual.unsqueeze(1)) @ self.scaled_last  # dL/d hidden_second
        grad = (grad * (hidden_second > 0)) @ self.second.weight  # dL/d hidden_first
        grad = (grad * (hidden_first > 0)) @ self.first.weight  # dL/dS
        return loss, (grad,)
