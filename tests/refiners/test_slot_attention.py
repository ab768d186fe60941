"""refiners/slot_attention.py against a reference written from Locatello et al. (2020),
Algorithm 1, in float64 with plain loops; and what each of its settings does."""
import math

import pytest
import torch

from refiners.slot_attention import SlotAttention, SlotAttentionSettings


def layer_norm(x, norm):
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + norm.eps) * norm.weight + norm.bias


def gru_cell(x, h, cell):
    """torch.nn.GRUCell's equations (r, z, n gates)."""
    w_r, w_z, w_n = cell.weight_ih.chunk(3)
    u_r, u_z, u_n = cell.weight_hh.chunk(3)
    b_r, b_z, b_n = cell.bias_ih.chunk(3)
    c_r, c_z, c_n = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ w_r.T + b_r + h @ u_r.T + c_r)
    z = torch.sigmoid(x @ w_z.T + b_z + h @ u_z.T + c_z)
    n = torch.tanh(x @ w_n.T + b_n + r * (h @ u_n.T + c_n))
    return (1 - z) * n + z * h


def reference(module, s0, features):
    """Algorithm 1 for one example at a time: s0 [N, D], features [M, F] -> slots [N, D]."""
    slots = s0
    inputs = layer_norm(features, module.norm_features)
    keys, values = inputs @ module.to_key.weight.T, inputs @ module.to_value.weight.T
    n, d = s0.shape
    for _ in range(module.steps):
        previous = slots
        queries = layer_norm(slots, module.norm_slots) @ module.to_query.weight.T
        attention = torch.zeros(len(features), n, dtype=s0.dtype)
        for i in range(len(features)):
            logits = torch.stack([keys[i] @ queries[j] / math.sqrt(d) for j in range(n)])
            attention[i] = torch.softmax(logits, 0) + module.epsilon
        updates = torch.stack([sum(attention[i, j] * values[i] for i in range(len(features))) / attention[:, j].sum()
                               for j in range(n)])
        slots = gru_cell(updates, previous, module.gru)
        hidden = torch.relu(layer_norm(slots, module.norm_mlp) @ module.mlp[0].weight.T + module.mlp[0].bias)
        slots = slots + hidden @ module.mlp[2].weight.T + module.mlp[2].bias
    return slots


def module_of(**settings):
    torch.manual_seed(0)
    module = SlotAttention(SlotAttentionSettings("slot-attention", **settings), slot_dim=6, feature_dim=5).double()
    for norm in (module.norm_features, module.norm_slots, module.norm_mlp):  # not the identity they start as
        if isinstance(norm, torch.nn.LayerNorm):
            torch.nn.init.normal_(norm.weight, 1.0, 0.3)
            torch.nn.init.normal_(norm.bias, 0.0, 0.3)
    return module


def test_the_slots_follow_algorithm_1():
    module = module_of(mlp_hidden=7)
    s0, features = torch.randn(2, 4, 6, dtype=torch.float64), torch.randn(2, 9, 5, dtype=torch.float64)
    slots = module(s0, None, features=features).set
    expected = torch.stack([reference(module, s0[b], features[b]) for b in range(2)])
    assert torch.allclose(slots, expected, atol=1e-10)
    assert (slots - s0).abs().max() > 0.1


def test_the_slots_are_permutation_equivariant_and_the_features_a_set():
    module = module_of()
    s0, features = torch.randn(1, 4, 6, dtype=torch.float64), torch.randn(1, 9, 5, dtype=torch.float64)
    slots = module(s0, None, features=features).set
    order, shuffle = torch.randperm(4), torch.randperm(9)
    assert torch.allclose(module(s0[:, order], None, features=features[:, shuffle]).set, slots[:, order], atol=1e-12)


def test_padding_slots_and_features_change_nothing_else():
    module = module_of()
    s0, features = torch.randn(1, 3, 6, dtype=torch.float64), torch.randn(1, 5, 5, dtype=torch.float64)
    padded_s0 = torch.cat([s0, torch.randn(1, 2, 6, dtype=torch.float64)], 1)
    padded_features = torch.cat([features, torch.randn(1, 4, 5, dtype=torch.float64)], 1)
    mask, feature_mask = torch.arange(5) < 3, torch.arange(9) < 5
    padded = module(padded_s0, None, mask[None], features=padded_features, feature_mask=feature_mask[None]).set
    assert torch.allclose(padded[:, :3], module(s0, None, features=features).set, atol=1e-12)
    assert torch.equal(padded[:, 3:], padded_s0[:, 3:])


def test_zero_steps_return_s0_and_every_setting_changes_the_slots():
    s0, features = torch.randn(2, 4, 6, dtype=torch.float64), torch.randn(2, 9, 5, dtype=torch.float64)
    assert torch.equal(module_of(steps=0)(s0, None, features=features).set, s0)
    default = module_of()(s0, None, features=features).set
    for changed in ({"steps": 2}, {"gru": False}, {"layer_norm": False}, {"epsilon": 0.5}, {"mlp_hidden": 5}):
        assert not torch.allclose(module_of(**changed)(s0, None, features=features).set, default), changed
    assert module_of(gru=False).gru is None and isinstance(module_of(layer_norm=False).norm_slots, torch.nn.Identity)


def test_the_gaussian_start_draws_slots_from_its_learned_distribution():
    module = module_of(init="gaussian", steps=0)
    s0 = torch.zeros(1000, 3, 6, dtype=torch.float64)
    drawn = module(s0, None, features=torch.randn(1000, 2, 5, dtype=torch.float64)).set.reshape(-1, 6)
    assert torch.allclose(drawn.mean(0), module.mean.reshape(6), atol=0.1 * module.log_std.exp().max().item())
    assert torch.allclose(drawn.std(0), module.log_std.exp().reshape(6), rtol=0.05)
    drawn.sum().backward()
    assert module.mean.grad is not None and module.log_std.grad is not None


def test_it_needs_features_and_refuses_settings_outside_their_declarations():
    with pytest.raises(ValueError, match="attends over the perception features"):
        module_of()(torch.randn(1, 2, 6, dtype=torch.float64), None)
    for bad, message in (({"steps": -1}, "steps must be"), ({"init": "zeros"}, "init must be one of s0, gaussian"),
                         ({"epsilon": 0.0}, "epsilon must be a finite number > 0"), ({"mlp_hidden": 0}, "mlp_hidden")):
        with pytest.raises(ValueError, match=message):
            SlotAttentionSettings("slot-attention", **bad)
