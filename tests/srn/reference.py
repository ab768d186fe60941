"""Reference implementations of the `srn` contract (README, section "The `srn` package"),
written from the documented maths and not from srn/: plain loops over batch entries,
elements, channels and steps, exact rational knot positions, meant to run in float64.

Everything here is differentiable (torch scalars and vectors, no in-place tricks), so
tests can compare gradients as well as values. The encoders read the weights of the
module under test, so the comparison checks the function, not the initialisation.
"""
from typing import Callable, Sequence

import torch


# --- FSPool --------------------------------------------------------------------------------


def knot_function(knots: torch.Tensor, j: int, n: int) -> torch.Tensor:
    """w(j / (n - 1)) for the piecewise-linear function through knots[0..P] placed at
    t = p / P (w(0) for a set of one element), with the position kept as an exact
    fraction: t * P = j * P / (n - 1)."""
    pieces = knots.shape[0] - 1
    if n == 1:
        return knots[0]
    numerator, denominator = j * pieces, n - 1  # t * P as a fraction
    piece = min(numerator // denominator, pieces - 1)  # t = 1 is the right end of the last piece
    frac = (numerator - piece * denominator) / denominator
    return (1 - frac) * knots[piece] + frac * knots[piece + 1]


def fspool(weight: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """weight [C, P + 1] (the knots of each channel), x [B, N, C], mask [B, N] -> [B, C].

    Per set and channel: the real values sorted in descending order, the j-th largest
    (0-based) of n weighted by w(j / (n - 1)). Padded values are never read."""
    batch, n_max, channels = x.shape
    rows = []
    for b in range(batch):
        real = [i for i in range(n_max) if mask is None or bool(mask[b, i])]
        n = len(real)
        row = []
        for c in range(channels):
            values = sorted((x[b, i, c] for i in real), key=lambda v: float(v.detach()), reverse=True)
            total = x.new_zeros(())
            for j, value in enumerate(values):
                total = total + value * knot_function(weight[c], j, n)
            row.append(total)
        rows.append(torch.stack(row) if row else x.new_zeros(0))
    return torch.stack(rows)


# --- SetEncoder ----------------------------------------------------------------------------


def linear(layer: torch.nn.Linear, v: torch.Tensor) -> torch.Tensor:
    """y_o = sum_k W[o, k] v_k + b_o, one vector."""
    return layer.weight @ v + layer.bias


def set_encoder(encoder, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """SetEncoder: each real element through Linear-ReLU-Linear-ReLU-Linear, divided by the
    number n of real elements, then FSPool over the real elements only."""
    first, second, third = [m for m in encoder.mlp if isinstance(m, torch.nn.Linear)]
    batch, n_max, _ = x.shape
    out_dim = third.out_features
    rows = []
    for b in range(batch):
        real = [i for i in range(n_max) if mask is None or bool(mask[b, i])]
        n = len(real)
        row = [x.new_zeros(out_dim)] * n_max  # padding: a value FSPool must never read
        for i in real:
            v = torch.relu(linear(first, x[b, i]))
            v = torch.relu(linear(second, v))
            row[i] = linear(third, v) / n
        rows.append(torch.stack(row))
    h = torch.stack(rows)
    return fspool(encoder.pool.weight, h, mask)


# --- GraphEncoder --------------------------------------------------------------------------


def graph_encoder(encoder, nodes: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """GraphEncoder, one node pair at a time: node i of n real nodes gets
    a_i = (1 / n) * sum over real j != i of edges[i, j] * MLP_msg([v_i, v_j]) with
    MLP_msg = Linear-ReLU-Linear; h_i = MLP_node([v_i, a_i]) / n; FSPool over the real
    nodes. Padded nodes neither send nor receive, and their edges are never read."""
    first_node, second_node = [m for m in encoder.node_mlp if isinstance(m, torch.nn.Linear)]
    batch, n_max, _ = nodes.shape
    hidden = encoder.message_second.out_features
    rows = []
    for b in range(batch):
        real = [i for i in range(n_max) if mask is None or bool(mask[b, i])]
        n = len(real)
        row = [nodes.new_zeros(second_node.out_features)] * n_max
        for i in real:
            a = nodes.new_zeros(hidden)
            for j in real:
                if j == i:
                    continue
                pair = torch.cat([nodes[b, i], nodes[b, j]])
                message = linear(encoder.message_second, torch.relu(linear(encoder.message_first, pair)))
                a = a + edges[b, i, j] * message
            a = a / n
            h = linear(second_node, torch.relu(linear(first_node, torch.cat([nodes[b, i], a]))))
            row[i] = h / n
        rows.append(torch.stack(row))
    return fspool(encoder.pool.weight, torch.stack(rows), mask)


def complete_graph(mask: torch.Tensor | None, batch: int, n: int, dtype=torch.float64) -> torch.Tensor:
    """Weight 1 between distinct real nodes, 0 on the diagonal and for padded nodes."""
    edges = torch.zeros(batch, n, n, dtype=dtype)
    for b in range(batch):
        for i in range(n):
            for j in range(n):
                real = mask is None or (bool(mask[b, i]) and bool(mask[b, j]))
                if i != j and real:
                    edges[b, i, j] = 1.0
    return edges


# --- the refiners' inner loop --------------------------------------------------------------


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t if t.requires_grad else t.detach().requires_grad_(True)


def _heavy_ball_step(energy: Callable[..., torch.Tensor], current: list[torch.Tensor], velocity: list[torch.Tensor],
                     lr: float, momentum: float, create_graph: bool) -> tuple[list, list, float]:
    """One step of torch.optim.SGD's heavy ball on every variable (v <- momentum * v + dE/dS,
    S <- S - lr * v) -> (variables, velocities, E before the step)."""
    loss = energy(*current)
    grads = torch.autograd.grad(loss, current, create_graph=create_graph)
    velocity = [momentum * v + g for v, g in zip(velocity, grads)]
    return [s - lr * v for s, v in zip(current, velocity)], velocity, float(loss.detach())


def unrolled_descent(
    energy: Callable[..., torch.Tensor],
    variables: Sequence[torch.Tensor],
    steps: int,
    lr: float,
    momentum: float,
) -> tuple[list[torch.Tensor], list[float]]:
    """r steps of heavy-ball SGD (torch.optim.SGD's convention: v starts at 0,
    v <- momentum * v + dE/dS, S <- S - lr * v) on every variable at once, differentiating
    through every step (create_graph=True), the velocities included.
    -> (refined variables, inner loss before each step)."""
    current = [_leaf(v) for v in variables]
    velocity = [torch.zeros_like(v) for v in current]
    losses = []
    for _ in range(steps):
        current, velocity, loss = _heavy_ball_step(energy, current, velocity, lr, momentum, create_graph=True)
        losses.append(loss)
    return current, losses


def last_step_descent(
    energy: Callable[..., torch.Tensor],
    variables: Sequence[torch.Tensor],
    steps: int,
    lr: float,
    momentum: float,
) -> tuple[list[torch.Tensor], list[float]]:
    """The same steps and values as unrolled_descent, but the first r - 1 run without a
    graph (velocities included); the last one is differentiated, from
    S_{r-1}.detach() + (S0 - S0.detach()): the value of S_{r-1}, the gradient passed
    straight through to S0."""
    initial = list(variables)
    current = [v.detach() for v in variables]
    velocity = [torch.zeros_like(v) for v in current]
    losses = []
    for _ in range(steps - 1):
        leaves = [v.detach().requires_grad_(True) for v in current]
        current, velocity, loss = _heavy_ball_step(energy, leaves, velocity, lr, momentum, create_graph=False)
        current, velocity = [s.detach() for s in current], [v.detach() for v in velocity]
        losses.append(loss)
    current = [_leaf(s.detach() + (s0 - s0.detach())) for s, s0 in zip(current, initial)]
    current, velocity, loss = _heavy_ball_step(energy, current, velocity, lr, momentum, create_graph=True)
    losses.append(loss)
    return current, losses
