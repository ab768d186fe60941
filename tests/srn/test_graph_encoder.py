import torch

from srn import GraphEncoder, complete_graph

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
