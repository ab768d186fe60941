"""H_agg of the SRN: a permutation-invariant set encoder."""
import torch
from torch import nn

from srn.fspool import FSPool


class SetEncoder(nn.Module):
    """Per-element 3-layer MLP, then FSPool (the FSEncoder of the official SRN code).

    The MLP activations are divided by the set size before pooling, as the official code
    does so that big sets do not give big activations; with a mask the size is the number
    of real elements, so padding changes nothing. ``nn.Linear`` rather than
    ``Conv1d(kernel_size=1)``: same function, a faster double backward on the CPU (see
    benchmarks/inner_loop.py), and the layers ``srn.set_energy`` differentiates by hand.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, n_pieces: int = 20):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_dim),
        )
        self.pool = FSPool(out_dim, n_pieces)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, N, in_dim], mask [B, N] bool or None -> [B, out_dim]."""
        h = self.mlp(x)
        if mask is None:
            h = h / x.shape[1]
        else:
            h = h / mask.sum(dim=1).clamp(min=1).to(h.dtype)[:, None, None]
        return self.pool(h, mask)
