"""Featurewise sort pooling (FSPool; Zhang, Hare and Prugel-Bennett, ICLR 2020)."""
import torch
from torch import nn


class FSPool(nn.Module):
    """Permutation-invariant pooling of a set of vectors.

    Every channel is sorted in descending order over the set and the sorted values are
    summed with weights read off a learnable piecewise-linear function on [0, 1]: the j-th
    largest of n values (0-based) gets weight w(j / (n - 1)), where w linearly
    interpolates ``n_pieces + 1`` knots (a set of one element gets w(0)). Padded elements
    are excluded before sorting, so they never influence the result, whatever their value.
    """

    def __init__(self, in_channels: int, n_pieces: int = 20):
        super().__init__()
        if n_pieces < 1:
            raise ValueError(f"FSPool needs n_pieces >= 1, got {n_pieces}")
        self.n_pieces = n_pieces
        self.weight = nn.Parameter(torch.empty(in_channels, n_pieces + 1))
        nn.init.normal_(self.weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, N, C], mask [B, N] bool (True = real element) or None -> [B, C]."""
        batch, n_max, channels = x.shape
        if channels != self.weight.shape[0]:
            raise ValueError(f"FSPool expects {self.weight.shape[0]} channels, got {channels}")
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        x_sorted, _ = x.sort(dim=1, descending=True)
        real, weight = self._weight_of_ranks(set_sizes(mask, batch, n_max, x.dtype, x.device), n_max)
        x_sorted = torch.where(real.unsqueeze(-1), x_sorted, torch.zeros_like(x_sorted))
        return (x_sorted * weight).sum(dim=1)

    def rank_weights(self, sizes: torch.Tensor, n_max: int) -> torch.Tensor:
        """sizes [B] (real elements per set, as floats) -> [B, N, C]: the weight of the
        j-th largest value of each set and channel, 0 for ranks j >= its size. It depends
        on the set sizes and the knots only, so a caller pooling many sets of the same
        sizes (the refiners' inner steps) computes it once."""
        real, weight = self._weight_of_ranks(sizes, n_max)
        return torch.where(real.unsqueeze(-1), weight, torch.zeros_like(weight))

    def _weight_of_ranks(self, sizes: torch.Tensor, n_max: int) -> tuple[torch.Tensor, torch.Tensor]:
        """sizes [B] -> (real [B, N] bool: rank j < size, weight [B, N, C] of rank j)."""
        rank = torch.arange(n_max, device=sizes.device, dtype=sizes.dtype)  # [N]
        real = rank < sizes.unsqueeze(1)  # [B, N]: the first n sorted entries of each set
        position = rank / (sizes - 1).clamp(min=1).unsqueeze(1)  # [B, N], j / (n - 1)
        return real, self._weight_at(position.clamp(max=1))

    def _weight_at(self, position: torch.Tensor) -> torch.Tensor:
        """position [B, N] in [0, 1] -> interpolated knot weights [B, N, C]."""
        index = position * self.n_pieces
        left = index.floor().long().clamp(max=self.n_pieces)
        right = (left + 1).clamp(max=self.n_pieces)
        frac = (index - left.to(index.dtype)).unsqueeze(-1)  # [B, N, 1]
        knots = self.weight.t()  # [P + 1, C]
        return (1 - frac) * knots[left] + frac * knots[right]


def set_sizes(mask: torch.Tensor | None, batch: int, n_max: int, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
    """[B] the number of real elements of each set (``n_max`` without a mask), as ``dtype``."""
    if mask is None:
        return torch.full((batch,), float(n_max), dtype=dtype, device=device)
    return mask.sum(dim=1).to(dtype)
