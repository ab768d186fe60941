import torch

from srn import GraphEncoder, complete_graph
from tests.srn import reference

B, N, D, E = 2, 5, 3, 4


def encoder():
    torch.manual_seed(0)
    return GraphEncoder(D, E, hidden=8)


def test_shape():
    assert encoder()(torch.randn(B, N, D), torch.rand(B, N, N)).shape == (B, E)


def test_invariant_to_relabelling_nodes():
    nodes, edges = torch.randn(B, N, D), torch.rand(B, N, N)
    perm = torch.randperm(N)
    enc = encoder()
    torch.testing.assert_close(enc(nodes[:, perm], edges[:, perm][:, :, perm]), enc(nodes, edges))


def test_edge_weights_scale_the_messages():
    enc = encoder()
    nodes = torch.randn(B, N, D)
    edges = torch.rand(B, N, N)
    assert not torch.allclose(enc(nodes, edges), enc(nodes, 2 * edges))
    edges.requires_grad_(True)
    enc(nodes, edges).sum().backward()
    off_diagonal = ~torch.eye(N, dtype=torch.bool)
    assert torch.all(edges.grad[:, off_diagonal] != 0)
    assert torch.all(edges.grad[:, ~off_diagonal] == 0)  # self loops carry no message


def test_padding_changes_nothing():
    enc = encoder()
    nodes, edges = torch.randn(B, 3, D), torch.rand(B, 3, 3)
    padded_nodes = torch.cat([nodes, torch.randn(B, 2, D)], dim=1)
    padded_edges = torch.rand(B, N, N)
    padded_edges[:, :3, :3] = edges
    mask = torch.tensor([[1, 1, 1, 0, 0]] * B, dtype=torch.bool)
    torch.testing.assert_close(enc(padded_nodes, padded_edges, mask), enc(nodes, edges))


def test_complete_graph_has_no_self_loops_and_no_padding():
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    expected = torch.tensor([[[0.0, 1, 0], [1, 0, 0], [0, 0, 0]]])
    assert torch.equal(complete_graph(mask, 1, 3, torch.device("cpu"), torch.float32), expected)


# --- against the pairwise loops of tests/srn/reference.py, float64 -------------------------


def float64_graph(seed=3):
    """Nodes and non-symmetric edges with a non-zero diagonal, junk (large, finite) on padded
    nodes and on every edge that touches one; sets of 5, 3, 1 and 0 real nodes, and a
    ragged one."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 1]],
                        dtype=torch.bool)
    nodes = torch.randn(5, N, D, generator=generator, dtype=torch.float64)
    edges = torch.rand(5, N, N, generator=generator, dtype=torch.float64) * 2 - 0.5
    nodes[~mask] = 1e3
    padded_pair = ~(mask.unsqueeze(2) & mask.unsqueeze(1))
    edges[padded_pair] = -1e3
    return nodes.requires_grad_(True), edges.requires_grad_(True), mask


def test_matches_pairwise_reference_values_and_gradients_with_padding():
    enc = encoder().double()
    nodes, edges, mask = float64_graph()
    got = enc(nodes, edges, mask)
    expected = reference.graph_encoder(enc, nodes, edges, mask)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert torch.equal(got[3], torch.zeros(E, dtype=torch.float64))  # no real node
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    wrt = [nodes, edges, *enc.parameters()]
    grads = torch.autograd.grad((got * weights).sum(), wrt)
    expected_grads = torch.autograd.grad((expected * weights).sum(), wrt, allow_unused=True)
    names = ["nodes", "edges"] + [name for name, _ in enc.named_parameters()]
    for name, g, e, t in zip(names, grads, expected_grads, wrt):
        e = torch.zeros_like(t) if e is None else e
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12, msg=lambda m, name=name: f"d/d {name}: {m}")
    # Padding and self loops get no gradient: the reference never reads them.
    assert torch.all(grads[0][~mask] == 0)
    carries_a_message = mask.unsqueeze(2) & mask.unsqueeze(1) & ~torch.eye(N, dtype=torch.bool)
    assert torch.all(grads[1][~carries_a_message] == 0) and torch.all(grads[1][carries_a_message] != 0)


def test_matches_pairwise_reference_without_mask():
    enc = encoder().double()
    nodes, edges, _ = float64_graph(seed=5)
    nodes, edges = nodes.detach()[:2].normal_(), edges.detach()[:2].uniform_()
    torch.testing.assert_close(enc(nodes, edges), reference.graph_encoder(enc, nodes, edges), rtol=1e-10, atol=1e-12)


def test_messages_are_averaged_over_the_real_nodes_by_hand():
    """One channel everywhere, weights set by hand so each step can be followed:
    MLP_msg([v_i, v_j]) = relu(v_j) (only the sender's value), MLP_node([v_i, a_i]) = relu(a_i),
    FSPool with one piece, knots 1 and 0 (w(t) = 1 - t; a plain sum could not tell w_ij from
    w_ji). With n real nodes of values v and edge weights w: a_i = sum_{j != i} w_ij relu(v_j) / n,
    h_i = relu(a_i) / n, out = sum over the h sorted in descending order of h_(k) (1 - k / (n - 1))."""
    enc = GraphEncoder(1, 1, hidden=1, n_pieces=1).double()
    with torch.no_grad():
        enc.message_first.weight.copy_(torch.tensor([[0.0, 1.0]]))
        enc.message_first.bias.zero_()
        enc.message_second.weight.fill_(1.0)
        enc.message_second.bias.zero_()
        enc.node_mlp[0].weight.copy_(torch.tensor([[0.0, 1.0]]))
        enc.node_mlp[0].bias.zero_()
        enc.node_mlp[2].weight.fill_(1.0)
        enc.node_mlp[2].bias.zero_()
        enc.pool.weight.copy_(torch.tensor([[1.0, 0.0]]))
    nodes = torch.tensor([[[1.0], [2.0], [99.0], [4.0]]], dtype=torch.float64)  # node 2 is padding
    edges = torch.tensor([[[7.0, 1.0, 5.0, 1.0],
                           [2.0, 7.0, 5.0, 0.5],
                           [5.0, 5.0, 5.0, 5.0],
                           [1.0, 3.0, 5.0, 7.0]]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False, True]])
    # n = 3 real nodes (0, 1, 3); the diagonal (7) and the padding (5, 99) must not count:
    # a_0 = (1 * 2 + 1 * 4) / 3 = 2, a_1 = (2 * 1 + 0.5 * 4) / 3 = 4/3, a_3 = (1 * 1 + 3 * 2) / 3 = 7/3;
    # h = a / 3 = (2/3, 4/9, 7/9); out = 7/9 * 1 + 2/3 * 1/2 + 4/9 * 0 = 10/9.
    out = enc(nodes, edges, mask)
    torch.testing.assert_close(out, torch.tensor([[10 / 9]], dtype=torch.float64), rtol=1e-12, atol=0)
    # Without a mask node 2 is real: n = 4 and it sends relu(99) * w_i2 = 495 to everyone.
    a = [(1 * 2 + 5 * 99 + 1 * 4) / 4, (2 * 1 + 5 * 99 + 0.5 * 4) / 4, (5 * 1 + 5 * 2 + 5 * 4) / 4,
         (1 * 1 + 3 * 2 + 5 * 99) / 4]  # 501/4, 499/4, 35/4, 502/4
    expected = sum(h * w for h, w in zip(sorted(a, reverse=True), [1, 2 / 3, 1 / 3, 0])) / 4
    torch.testing.assert_close(enc(nodes, edges), torch.tensor([[expected]], dtype=torch.float64), rtol=1e-12, atol=0)
