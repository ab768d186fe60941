"""The kind ``slot-attention``: Slot Attention (Locatello et al., NeurIPS 2020, Algorithm 1).
Its N slots start from the proposed set S0 (or, as in the paper, from a learned Gaussian)
and take T iterations of attention over the perception features the set was made from:
the slots compete for each feature (a softmax over the slots), each slot takes the
attention-weighted mean of the features' values, and a GRU cell and a residual MLP update
it. It does not use the embedding z."""
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from refiners.kind import Kind, Refined
from refiners.schedule import Schedule
from refiners.settings import SCHEDULE_HELP, KindSettings, described
from srn.inner_descent import Steps
from declared.settings import Count, Index, OneOf, Positive

INITS = ("s0", "gaussian")


@dataclass(frozen=True)
class SlotAttentionSettings(KindSettings):
    """Slot Attention's settings; the defaults are the paper's (T = 3, GRU, LayerNorm, MLP
    hidden 128, epsilon 1e-8; no ``schedule``), but the slots start from S0 (``init: gaussian`` is the
    paper's). It takes no z, so it has no ``embedding``; seed: draws its parameters."""

    kind: Annotated[str, OneOf(("slot-attention",))]
    steps: Steps = described("attention iterations T (the paper: 3)", 3)
    schedule: Schedule | None = described(SCHEDULE_HELP, None)
    init: Annotated[str, OneOf(INITS)] = described(
        "the slots' initial values: the proposed set S0, or draws from a learned Gaussian (the paper)", "s0")
    mlp_hidden: Count = described("the residual MLP's hidden width (the paper: 128)", 128)
    epsilon: Positive = described("added to the attention weights before their mean (the paper: 1e-8)", 1e-8)
    gru: bool = described("update the slots with a GRU cell (the paper), else take the attention's update", True)
    layer_norm: bool = described("LayerNorm on the features, the slots and the MLP's input (the paper)", True)
    seed: Index | None = None


class SlotAttention(nn.Module):
    """Slots [B, N, D] from attention over features [B, M, F] (see the module docstring).

    The attention runs in the slots' width D: keys and values are linear maps F -> D of
    the (normalised) features, queries a linear map D -> D of the (normalised) slots,
    scaled by 1 / sqrt(D).
    """

    def __init__(self, settings: SlotAttentionSettings, slot_dim: int, feature_dim: int):
        super().__init__()
        self.steps, self.init, self.epsilon = settings.steps, settings.init, settings.epsilon
        norm = nn.LayerNorm if settings.layer_norm else (lambda width: nn.Identity())
        self.norm_features, self.norm_slots, self.norm_mlp = norm(feature_dim), norm(slot_dim), norm(slot_dim)
        self.to_key = nn.Linear(feature_dim, slot_dim, bias=False)
        self.to_value = nn.Linear(feature_dim, slot_dim, bias=False)
        self.to_query = nn.Linear(slot_dim, slot_dim, bias=False)
        self.gru = nn.GRUCell(slot_dim, slot_dim) if settings.gru else None
        self.mlp = nn.Sequential(nn.Linear(slot_dim, settings.mlp_hidden), nn.ReLU(),
                                 nn.Linear(settings.mlp_hidden, slot_dim))
        if settings.init == "gaussian":
            self.mean = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 1, slot_dim)))
            self.log_std = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 1, slot_dim)))

    def forward(self, s0: torch.Tensor, z: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, feature_mask: torch.Tensor | None = None,
                edges0: torch.Tensor | None = None) -> Refined:
        """s0 [B, N, D], features [B, M, F] (required), mask [B, N] bool or None (padding
        slots take no features and are returned as they came), feature_mask [B, M] bool or
        None (padding features go to no slot) -> Refined(slots [B, N, D], None)."""
        if features is None:
            raise ValueError("Slot Attention attends over the perception features: the adapter passed none")
        slots = s0
        if self.init == "gaussian":
            slots = self.mean + self.log_std.exp() * torch.randn_like(s0)
        inputs = self.norm_features(features)
        keys, values = self.to_key(inputs), self.to_value(inputs)  # [B, M, D]
        scale = s0.shape[-1] ** -0.5
        for _ in range(self.steps):
            previous = slots
            queries = self.to_query(self.norm_slots(slots))  # [B, N, D]
            logits = torch.einsum("bmd,bnd->bmn", keys, queries) * scale  # [B, M, N]
            if mask is not None:
                logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
            attention = logits.softmax(dim=-1) + self.epsilon  # over the slots
            if feature_mask is not None:
                attention = attention * feature_mask.unsqueeze(-1)
            weights = attention / attention.sum(dim=1, keepdim=True)  # a weighted mean over the features
            updates = torch.einsum("bmn,bmd->bnd", weights, values)  # [B, N, D]
            if self.gru is None:
                slots = updates
            else:
                slots = self.gru(updates.reshape(-1, updates.shape[-1]), previous.reshape(-1, previous.shape[-1]))
                slots = slots.view_as(previous)
            slots = slots + self.mlp(self.norm_mlp(slots))
        if mask is not None:
            slots = torch.where(mask.unsqueeze(-1), slots, s0)
        return Refined(slots)


def build(settings: SlotAttentionSettings, element_dim: int, embedding_dim: int, feature_dim: int | None) -> nn.Module:
    if feature_dim is None:
        raise ValueError("Slot Attention attends over perception features: the adapter has none")
    return SlotAttention(settings, element_dim, feature_dim)


KIND = Kind("slot-attention", "Slot Attention", SlotAttentionSettings, build, refines_edges=False,
            uses_embedding=False,
            summary="Slot Attention (Locatello et al. 2020): T iterations of attention over the perception features")
