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
        if mask is None:
            sizes = x.new_full((batch,), float(n_max))
        else:
            x = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            sizes = mask.sum(dim=1).to(x.dtype)
        x_sorted, _ = x.sort(dim=1, descending=True)
        rank = torch.arange(n_max, device=x.device, dtype=x.dtype)  # [N]
        real = rank < sizes.unsqueeze(1)  # [B, N]: the first n sorted entries of each set
        position = rank / (sizes - 1).clamp(min=1).unsqueeze(1)  # [B, N], j / (n - 1)
        weight = self._weight_at(position.clamp(max=1))  # [B, N, C]
        x_sorted = torch.where(real.unsqueeze(-1), x_sorted, torch.zeros_like(x_sorted))
        return (x_sorted * weight).sum(dim=1)

    def _weight_at(self, position: torch.Tensor) -> torch.Tensor:
        """position [B, N] in [0, 1] -> interpolated knot weights [B, N, C]."""
        index = position * self.n_pieces
        left = index.floor().long().clamp(max=self.n_pieces)
        right = (left + 1).clamp(max=self.n_pieces)
        frac = (index - left.to(index.dtype)).unsqueeze(-1)  # [B, N, 1]
        knots = self.weight.t()  # [P + 1, C]
        return (1 - frac) * knots[left] + frac * knots[right]
