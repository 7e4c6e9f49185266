"""analysis.gradients against hand-unrolled RNNs (torch.autograd.grad on retained states),
brute-force path enumeration, the Fibonacci recurrence and numpy products of Jacobians.

The unrolled loops are the discrete RNN written out with torch.nn cells, so they share nothing
with rnnode's solver; in float64 the error signals agree to rounding (1e-12).
"""

import itertools

import numpy as np
import pytest
import torch

import rnnode
from rnnode.analysis import find_fixed_points
from rnnode.analysis.gradients import (
    count_gradient_paths,
    depth_jacobian,
    depth_singular_values,
    gradient_norms,
)

CELLS = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


def _torch_cells(model):
    """torch.nn cells with the model's weights, one per layer."""
    cells = []
    for layer in range(model.num_layers):
        field = model.field(layer)
        cell = CELLS[model.cell](field.input_size, model.hidden_size)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(field, name))
        cells.append(cell)
    return cells


def _loss(output, h_n):
    h = h_n[0] if isinstance(h_n, tuple) else h_n
    return (output**2).sum() + (output[2] * output[-1]).sum() + h.sum()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_sampled_coupling_norms_match_an_unrolled_torch_rnn(cell):
    T, B, L, H = 6, 2, 3, 4
    model = rnnode.ODERNN(3, H, L, cell=cell)
    x = torch.randn(T, B, 3)
    norms = gradient_norms(model, x, _loss)

    cells = _torch_cells(model)
    zeros = torch.zeros(B, H)
    states = [[zeros.clone().requires_grad_(True) for _ in range(L)]]
    memory = [torch.zeros(B, H) for _ in range(L)]
    for k in range(T):
        below, row = x[k], []
        for l, c in enumerate(cells):
            if cell == "lstm":
                h, memory[l] = c(below, (states[-1][l], memory[l]))
            else:
                h = c(below, states[-1][l])
            row.append(h)
            below = h
        states.append(row)
    output = torch.stack([row[-1] for row in states[1:]])
    h_n = torch.stack(states[-1])
    flat = [h for row in states for h in row]
    grads = torch.autograd.grad(_loss(output, (h_n,) if cell == "lstm" else h_n), flat)
    expected = torch.stack([g.norm() for g in grads]).reshape(T + 1, L).T
    assert norms.shape == (L, T + 1)
    torch.testing.assert_close(norms, expected, rtol=1e-12, atol=1e-14)


def test_continuous_coupling_norms_match_an_unrolled_euler_stack():
    # coupling="continuous" with Euler: h^l_k = h^l_{k-1} + dt (tanh(W_ih h^{l-1}_{k-1} + ...)
    # - h^l_{k-1}) / tau, every layer reading the state *before* the step.
    T, B, L, H, dt = 5, 2, 3, 3, 0.5
    model = rnnode.ODERNN(2, H, L, cell="rnn", tau=[1.0, 2.0, 0.5])
    x = torch.randn(T, B, 2)
    t = torch.arange(T + 1) * dt
    norms = gradient_norms(model, x, _loss, t=t, coupling="continuous")

    states = [[torch.zeros(B, H, requires_grad=True) for _ in range(L)]]
    for k in range(T):
        prev, row = states[-1], []
        for l in range(L):
            f = model.field(l)
            below = x[k] if l == 0 else prev[l - 1]
            z = below @ f.weight_ih.T + f.bias_ih + prev[l] @ f.weight_hh.T + f.bias_hh
            row.append(prev[l] + dt * (torch.tanh(z) - prev[l]) / float(f.tau))
        states.append(row)
    output = torch.stack([row[-1] for row in states[1:]])
    grads = torch.autograd.grad(_loss(output, torch.stack(states[-1])), sum(states, []))
    expected = torch.stack([g.norm() for g in grads]).reshape(T + 1, L).T
    torch.testing.assert_close(norms, expected, rtol=1e-12, atol=1e-14)


def test_full_state_norms_include_the_lstm_cell_state():
    model = rnnode.ODERNN(2, 3, 2, cell="lstm")
    x = torch.randn(4, 1, 2)
    hidden = gradient_norms(model, x, _loss)
    full = gradient_norms(model, x, _loss, full_state=True)
    solution = model.solve(x, track_state_gradients=True)
    grads = solution.state_gradients(_loss(solution.output, solution.h_n))  # (L, 1, T+1, 1, 6)
    cell_part = grads[:, 0, :, 0, 3:].norm(dim=-1)
    torch.testing.assert_close(full**2, hidden**2 + cell_part**2, rtol=1e-12, atol=1e-15)
    assert torch.any(cell_part > 1e-6)  # dLoss/dc is not zero


def test_vanishing_gradients_shrink_geometrically_for_a_contracting_linear_chain():
    # h_k = a h_{k-1} + x_k with a = 0.5 and loss = h_T: dLoss/dh_k = a^(T - k) exactly.
    model = rnnode.ODERNN(1, 1, 1, cell="linear", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.fill_(0.5)
    norms = gradient_norms(model, torch.randn(8, 1, 1), lambda out, h_n: out[-1].sum())
    expected = 0.5 ** torch.arange(8, -1, -1, dtype=torch.float64)
    torch.testing.assert_close(norms[0], expected, rtol=1e-14, atol=0)


def _brute_force_paths(num_layers, skips):
    """Count sequences of offsets that step from num_layers down to exactly layer 1."""
    total = 0
    for length in range(num_layers):
        for steps in itertools.product(skips, repeat=length):
            if sum(steps) == num_layers - 1:
                # Every intermediate layer must stay >= 1 (always true for positive steps).
                total += 1
    return total


@pytest.mark.parametrize("skips", [(1,), (1, 2), (1, 3), (2, 3), (1, 2, 3)])
@pytest.mark.parametrize("num_layers", [1, 2, 5, 8])
def test_count_gradient_paths_matches_brute_force_enumeration(num_layers, skips):
    assert count_gradient_paths(num_layers, skips) == _brute_force_paths(num_layers, skips)


def test_paths_with_skips_one_and_two_are_fibonacci_numbers():
    fib = [1, 1]
    while len(fib) < 20:
        fib.append(fib[-1] + fib[-2])
    assert [count_gradient_paths(L) for L in range(1, 21)] == fib


@pytest.mark.parametrize("num_layers", [3, 5, 6])
def test_unit_weight_linear_stack_with_skips_has_fibonacci_many_paths(num_layers):
    # d h_top / d h_bottom within one step sums one unit product per path: the path count.
    model = rnnode.ODERNN(1, 1, num_layers, cell="linear", bias=False, skips=(1, 2))
    with torch.no_grad():
        for field in model.layers:
            field.weight_ih.fill_(1.0)
            field.weight_hh.fill_(0.3)
    expected = count_gradient_paths(num_layers, (1, 2))
    # Through the analytic depth Jacobian ...
    blocks = depth_jacobian(model, torch.randn(num_layers, 1), torch.randn(1)).detach()
    assert float(blocks[-1, 0, 0, 0]) == expected
    # ... and through autograd of the solved stack: dLoss/dh^1_k for loss = h^L_k.
    x = torch.randn(4, 1, 1)
    solution = model.solve(x, track_state_gradients=True)
    grads = solution.state_gradients(solution.output[2].sum())
    assert float(grads[0, 0, 3, 0, 0]) == pytest.approx(expected, rel=1e-14)


def test_depth_jacobian_at_a_fixed_point_is_the_one_step_total_derivative():
    # At a fixed point of the joint field every layer's one-step update returns its state, so
    # the chain h^1 -> h^2(h^1) -> h^3(h^2, h^1) of Euler updates is evaluated at h*; autograd
    # of that chain is the independent reference.
    model = rnnode.ODERNN(2, 3, 3, cell="rnn", skips=(1, 2))
    x = torch.randn(2)
    h_star = find_fixed_points(model, x, 1, opt_steps=0, max_iter=50).points[0]
    dt = 0.7

    def chain(h1):
        new = [h1]
        for l in range(1, 3):
            f = model.field(l)
            src = torch.cat([new[j] if j >= 0 else x for j in model.sources(l)])
            new.append(h_star[l] + dt * f(torch.zeros(()), h_star[l], f.project(src)))
        return torch.stack(new)

    expected = torch.autograd.functional.jacobian(chain, h_star[0])  # (3, 3, 3)
    ours = depth_jacobian(model, h_star, x, dt).detach()
    torch.testing.assert_close(ours[:, 0], expected, rtol=0, atol=1e-14)


def test_depth_singular_values_of_a_linear_chain_are_those_of_the_weight_product():
    model = rnnode.ODERNN(2, 3, 4, cell="linear")
    ours = depth_singular_values(model, torch.randn(2, 4, 3), torch.randn(2)).detach()
    product = np.eye(3)
    expected = [np.ones(3)]
    for l in range(1, 4):
        product = model.field(l).weight_ih.detach().numpy() @ product
        expected.append(np.linalg.svd(product, compute_uv=False))
    for b in range(2):
        np.testing.assert_allclose(ours[b].numpy(), np.stack(expected), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: count_gradient_paths(0), "num_layers: expected a positive integer"),
        (lambda: count_gradient_paths(3, (1, 1)), "skips: expected distinct positive"),
        (lambda: count_gradient_paths(3, (0,)), "skips: expected distinct positive"),
        (
            lambda: gradient_norms(
                rnnode.ODERNN(1, 2), torch.randn(3, 1, 1), lambda o, h: o.sum(0)
            ),
            r"loss_fn: expected a scalar tensor \(one element\), got \(1, 2\)",
        ),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_count_gradient_paths_uses_the_cores_checks_of_skips():
    with pytest.raises(TypeError, match="skips: expected a sequence"):
        count_gradient_paths(3, 2)
    with pytest.raises(ValueError, match="skips: expected distinct positive integer offsets"):
        count_gradient_paths(3, (1, 1))
    with pytest.raises(ValueError, match="num_layers: expected a positive integer"):
        count_gradient_paths(0)
