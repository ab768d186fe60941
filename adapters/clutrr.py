"""SRN / GRN between clutrr-baselines' sentence reader and its relation network.

The RN encoder (``RelationNetworkEncoder``) reads each sentence with a bidirectional LSTM,
mean-pools its outputs into a sentence object ([B, s, 200], s = the batch's most
sentences, zero rows for a story's missing sentences), and sums ``g_theta`` over every
ordered pair of objects. ``install`` wraps ``encoder.reader`` so that its objects are
refined first:

* S0 = the sentence objects zero-padded to ``set_size`` (20) elements; mask [B, 20] =
  the story's real sentences;
* z [B, 200] = mean over a story's real sentences of the last LSTM layer's final cell
  states (both directions), captured with a forward hook on the per-sentence encoding;
* SRN: a SetRefiner over a SetEncoder(200 -> 200); GRN: a GraphRefiner over a
  GraphEncoder(200 -> 200) on the same nodes, starting from weight 1 on every pair, whose
  refined edge weights scale the RN's pair terms (the rows of ``g_theta``'s output: pair
  (p, q) is row b*L*L + p*L + q, weight w[b, p, q]); both built by
  ``adapters.contract.build_refiner``.

``padding`` says what the padding does downstream:

* "masked" (default, sound): the refiners see the mask, so pad elements get no inner
  gradient and stay zero, and pad pairs are left out of the RN. That is the same function
  as refining only the s positions the upstream has, which is what is computed (cheaper;
  tests/adapters/test_clutrr.py checks the equality). With ``steps=0`` the model is the
  upstream's, bit for bit (the GRN's self pairs and the upstream's own zero rows for
  shorter stories keep weight 1).
* "zeroed" (ablation): as masked, but the RN sees all 20 x 20 pairs; pad-pair terms go
  through ``g_theta`` (so into its BatchNorm statistics) and are multiplied by 0 before the
  sum.
* "naive" (ablation): no mask anywhere; the RN sums ``g_theta`` over all 400 pairs.

The refiner's parameters come from ``adapters.contract.refiner_rng``, so the upstream's
random stream, hence its initial weights and dropout masks, are those of the baseline.
``install(encoder, settings, set_size=20, padding="masked")`` inserts it into a built
``RelationNetworkEncoder``; ``install_on_construction(experiment, settings, ...)`` makes the
upstream's ``run_experiment`` build its encoder with it.
"""
import contextlib
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adapters.contract import Adapter, build_refiner, refiner_rng
from refiners.settings import KindSettings

UPSTREAM = "clutrr-baselines"
PADDINGS = ("masked", "zeroed", "naive")
SET_SIZE = 20  # section 3.3: sets padded to 20 sentences


def sentence_cell_states(inp_lengths, hidden: tuple[torch.Tensor, torch.Tensor], bidirectional: bool) -> torch.Tensor:
    """Final cell states of the last LSTM layer per input row, from the ``hidden`` that
    the upstream's SimpleEncoder gets from its LSTM: it sorts the rows by length
    (``np.argsort(-lengths)``) and encodes the non-empty ones, so state i belongs to row
    order[i]. Returns [rows, H * directions]; empty rows get zeros."""
    cells = hidden[1]  # [layers * directions, non-empty rows, H]
    last = torch.cat([cells[-2], cells[-1]], dim=-1) if bidirectional else cells[-1]
    lengths = np.array(inp_lengths)
    order = torch.from_numpy(np.argsort(-lengths)[: last.size(0)]).to(last.device)
    return last.new_zeros(len(lengths), last.size(-1)).index_copy(0, order, last)


class PairWeightedGTheta(nn.Module):
    """``g_theta`` whose output rows (one per ordered pair of objects) are multiplied by
    weights [rows] when the reader wrapper has left some for this forward pass."""

    def __init__(self, g_theta: nn.Module):
        super().__init__()
        self.g_theta = g_theta
        self.pending: list[torch.Tensor] = []

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """pairs [B * L * L, 4 * dim] -> [B * L * L, g_dim]."""
        out = self.g_theta(pairs)
        if not self.pending:
            return out
        return out * self.pending.pop().unsqueeze(1)


class RefinedSentReader(nn.Module):
    """The upstream's RNSentReader followed by a refiner (see the module docstring)."""

    def __init__(self, reader: nn.Module, refiner: nn.Module, set_size: int, padding: str,
                 pair_weights: list, bidirectional: bool):
        super().__init__()
        self.reader = reader
        self.refiner = refiner
        self.set_size, self.padding = set_size, padding
        self.pair_weights = pair_weights  # PairWeightedGTheta.pending: weights for its next call
        self.bidirectional = bidirectional
        self.last_z: torch.Tensor | None = None

    def forward(self, batch):
        """batch (the upstream's Batch) -> (objects [B, L, 200], question outputs [B, len, 200]),
        L = s ("masked") or set_size ("zeroed", "naive")."""
        with self._captured_sentence_encoding() as captured:
            objects, question = self.reader(batch)
        batch_size, length, dim = objects.shape
        if length > self.set_size:
            raise ValueError(f"a batch has stories of {length} sentences, more than the set size {self.set_size}")
        real = torch.tensor(batch.sent_lengths, device=objects.device) > 0  # [B, s]
        cells = sentence_cell_states(captured["inp_lengths"], captured["hidden"], self.bidirectional)
        cells = cells.view(batch_size, length, -1)
        z = (cells * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True).clamp(min=1)  # [B, 200]
        self.last_z = z.detach()  # for inspection
        # "masked": pad elements are inert and pad pairs are dropped, so padding to set_size
        # and refining only the s positions are the same function (tested); the latter is
        # cheaper (the GRN's messages grow with the square of the set size).
        size = length if self.padding == "masked" else self.set_size
        s0 = F.pad(objects, (0, 0, 0, size - length))  # [B, size, dim]
        mask = None if self.padding == "naive" else F.pad(real, (0, size - length))
        refined, edges = self.refiner(s0, z, mask, features=s0, feature_mask=mask,
                                      edges0=s0.new_ones(batch_size, size, size))
        if self.padding == "zeroed":
            upstream = torch.arange(size, device=objects.device) < length
            kept = (upstream.unsqueeze(1) & upstream.unsqueeze(0)).to(s0.dtype).expand(batch_size, size, size)
            edges = kept if edges is None else edges * kept
        self.pair_weights[:] = [] if edges is None else [edges.reshape(-1)]
        return refined, question

    @contextlib.contextmanager
    def _captured_sentence_encoding(self):
        """The inputs and LSTM state of the reader's first SimpleEncoder call (the sentences;
        the second encodes the whole story for the query)."""
        captured = {}

        def hook(module, args, output):
            if not captured:
                captured["inp_lengths"] = args[0].inp_lengths
                captured["hidden"] = output[1]

        handle = self.reader.reader.register_forward_hook(hook)
        try:
            yield captured
        finally:
            handle.remove()


def install(encoder: nn.Module, settings: KindSettings, set_size: int = SET_SIZE,
            padding: str = "masked") -> nn.Module:
    """Insert the refiner into an upstream ``RelationNetworkEncoder`` (before the optimiser
    collects its parameters); returns the refiner. ``padding``: see the module docstring."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    model_config = encoder.model_config
    bidirectional = bool(model_config.encoder.bidirectional)
    dim = model_config.embedding.dim * (2 if bidirectional else 1)
    if settings.embedding_or(dim) != dim:
        raise ValueError(f"z is the LSTM's cell state, {dim} wide: the refiner's embedding cannot be {settings.embedding}")
    with refiner_rng(settings.seed):
        refiner = build_refiner(settings, dim, dim, dim)
    g_theta = PairWeightedGTheta(encoder.g_theta)
    encoder.g_theta = g_theta
    encoder.reader = RefinedSentReader(encoder.reader, refiner, set_size, padding, g_theta.pending,
                                       bidirectional)
    return refiner


def install_on_construction(experiment: ModuleType, settings: KindSettings, set_size: int = SET_SIZE,
                            padding: str = "masked") -> ModuleType:
    """The upstream's freshly imported ``codes.experiment.experiment`` module, patched so that
    ``run_experiment`` builds its encoder with the refiner (its ``choose_model`` wrapped:
    the refiner is in before the trainer collects the parameters for the optimiser).
    Patched in place: ``run_experiment`` looks ``choose_model`` up in its own module."""
    choose_model = experiment.choose_model

    def choose_model_with_refiner(config):
        encoder, decoder = choose_model(config)
        install(encoder, settings, set_size, padding)
        return encoder, decoder

    experiment.choose_model = choose_model_with_refiner
    return experiment


ADAPTER = Adapter(UPSTREAM, True, install, install_on_construction)
