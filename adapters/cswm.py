"""SRN in the pinned C-SWM (paper section 3.2, appendix E): the object encoder's state
vectors are refined before the relational transition model sees them.

C-SWM computes states as ``model.obj_encoder(model.obj_extractor(obs))`` on every path
(``contrastive_loss``, ``forward``, eval.py's ranking loop, train.py's decoder branch), so
one hook covers them all: ``model.obj_encoder`` becomes an ``SRNObjectEncoder`` around the
original encoder. ``modules_with_srn`` hands train.py and eval.py a ``modules`` whose
``ContrastiveSWM`` installs it at construction, so both scripts run unchanged, eval.py
included when it loads an SRN checkpoint.

The SRN's own parameters are initialised from a dedicated seed on a forked RNG: the
upstream's random streams (the torch global RNG that initialises its layers and shuffles,
numpy's that draws the negatives) are exactly those of the baseline, and with zero inner
steps the SRN model is the baseline model, loss for loss. It has no Conv2d, so
``utils.weights_init`` (which re-initialises every Conv2d) leaves it alone.
"""
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import nn

from patches import vendor
from srn import SetEncoder, SetRefiner


@dataclass(frozen=True)
class SRNSettings:
    """steps (r) and inner_lr of the refiner; seed initialises the SRN's parameters."""

    steps: int
    inner_lr: float
    seed: int = 0


class SRNObjectEncoder(nn.Module):
    """The object encoder of C-SWM with an SRN: object masks [B, K, H, W] -> states [B, K, D].

    S0 = encoder(masks) (C-SWM's EncoderMLP, [B, K, D]); z = embed(flatten(masks)) [B, E],
    a linear projection of all K masks; states = SetRefiner(H_agg, steps, inner_lr)(S0, z)
    with H_agg = SetEncoder(D, E, hidden=E). E is C-SWM's hidden_dim (512 in the paper: z
    is as wide as the transition MLP, H_agg is the circles experiment's).
    """

    def __init__(self, encoder: nn.Module, mask_size: int, embedding_dim: int, hidden_dim: int,
                 steps: int, inner_lr: float):
        super().__init__()
        self.initial = encoder
        self.embed = nn.Linear(mask_size, hidden_dim)
        self.refiner = SetRefiner(SetEncoder(embedding_dim, hidden_dim, hidden=hidden_dim), steps, inner_lr)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """masks [B, K, H, W] -> refined states [B, K, D]."""
        s0 = self.initial(masks)
        z = self.embed(masks.flatten(1))
        return self.refiner(s0, z)


def install_srn(model: nn.Module, settings: SRNSettings) -> SRNObjectEncoder:
    """Replace ``model.obj_encoder`` of a C-SWM ``ContrastiveSWM`` by an SRNObjectEncoder
    around it, without touching the global RNG; returns the new encoder."""
    mask_size = int(model.num_objects * model.width * model.height)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        encoder = SRNObjectEncoder(model.obj_encoder, mask_size, model.embedding_dim, model.hidden_dim,
                                   settings.steps, settings.inner_lr)
    model.obj_encoder = encoder
    return encoder


def modules_with_srn(upstream: vendor.Upstream, settings: SRNSettings) -> ModuleType:
    """The upstream's ``modules`` (freshly imported) with a ``ContrastiveSWM`` that installs
    the SRN when it is built; pass it to ``patches.cswm.run_script(..., modules=...)``.

    A copy of the module's namespace, so that the upstream class keeps its own name in its
    module (its ``super(ContrastiveSWM, self)`` must find the original class).
    """
    original = vendor.import_modules(upstream, ["modules"]).modules

    class ContrastiveSWMWithSRN(original.ContrastiveSWM):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            install_srn(self, settings)

    modules = ModuleType(original.__name__, original.__doc__)
    modules.__dict__.update(vars(original))
    modules.ContrastiveSWM = ContrastiveSWMWithSRN
    return modules
