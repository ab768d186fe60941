"""The decomposition metric of appendix B.2.

An element is non-empty when its decoded image (its share of the reconstruction,
softmax_i(I) * sigmoid(I_i)) has any value above 0.1; an image is decomposed when the
number of non-empty elements equals its number of circles.
"""
import numpy as np
import torch

NON_EMPTY_THRESHOLD = 0.1


def non_empty_elements(parts: torch.Tensor, threshold: float = NON_EMPTY_THRESHOLD) -> torch.Tensor:
    """parts [B, N, 3, H, W] -> bool [B, N]: whether each element draws any value above
    ``threshold``."""
    return parts.flatten(start_dim=2).amax(dim=2) > threshold


def decomposed(parts: torch.Tensor, counts: torch.Tensor, threshold: float = NON_EMPTY_THRESHOLD) -> torch.Tensor:
    """parts [B, N, 3, H, W], counts [B] circles per image -> bool [B]: whether the number of
    non-empty elements equals the number of circles."""
    return non_empty_elements(parts, threshold).sum(dim=1) == counts


def rates_by_count(success: np.ndarray, counts: np.ndarray, max_count: int) -> dict[int, float]:
    """success bool [M], counts int [M] -> {n: fraction of the images with n circles that
    succeeded} for n = 0..max_count (NaN when there is no such image)."""
    return {n: float(success[counts == n].mean()) if (counts == n).any() else float("nan")
            for n in range(max_count + 1)}
