import pytest
import torch

from adapters.contract import build_refiner, refiner_rng
from refiners.descent import DescentSettings
from srn import GraphEncoder, GraphRefiner, SetEncoder, SetRefiner


def test_settings_build_the_refiner_they_describe():
    srn = build_refiner(DescentSettings("srn", 3, 0.1, momentum=0.5, backprop="last", hidden=32, pieces=4), 6, 8)
    assert isinstance(srn, SetRefiner) and isinstance(srn.encoder, SetEncoder)
    assert (srn.steps, srn.inner_lr, srn.momentum, srn.backprop) == (3, 0.1, 0.5, "last")
    assert srn.encoder.mlp[0].in_features == 6 and srn.encoder.mlp[0].out_features == 32
    assert srn.encoder.mlp[-1].out_features == 8 and srn.encoder.pool.n_pieces == 4
    grn = build_refiner(DescentSettings("grn", 2, 0.01, hidden=16), 6, 8)
    assert isinstance(grn, GraphRefiner) and isinstance(grn.encoder, GraphEncoder)
    assert grn.encoder.message_first.out_features == 16


def test_the_refiner_rng_is_a_fork_seeded_with_the_run_seed():
    torch.manual_seed(0)
    with refiner_rng(7):
        first = torch.rand(3)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)  # the global stream did not move
    with refiner_rng(7):
        assert torch.equal(torch.rand(3), first)
    with pytest.raises(ValueError, match="seed is not set"):
        with refiner_rng(None):
            pass


def test_the_refiner_rng_seeds_only_the_cpu_generator_it_forks(monkeypatch):
    """On a GPU, re-seeding the CUDA generators inside the block would leave them re-seeded
    afterwards (only the CPU's is forked): the upstream's CUDA stream would then differ
    from the baseline's. No other generator may be seeded."""
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(("cuda", seed)))
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: seeded.append(("mps", seed)))
    monkeypatch.setattr(torch.xpu, "manual_seed_all", lambda seed: seeded.append(("xpu", seed)))
    with refiner_rng(7):
        torch.rand(1)
    assert seeded == []
