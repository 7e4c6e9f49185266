"""adjoint=True: the discrete adjoint of fixed-step methods, the continuous one of adaptive ones."""

import pytest
import torch

import rnnode
from rnnode._solve import SolverStats, integrate


def _rnn_pair(num_layers=2):
    torch.manual_seed(0)
    reference = torch.nn.RNN(3, 4, num_layers=num_layers).double()
    return reference, rnnode.from_torch(reference)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_bridge_adjoint_gradients_equal_torch_rnn_gradients(num_layers):
    """from_torch(m)(x, adjoint=True) was 78 to 109% off torch.nn.RNN's gradients; the discrete
    adjoint is the gradient of the steps taken: the same numbers to rounding."""
    reference, model = _rnn_pair(num_layers)
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    hx = 0.5 * torch.randn(num_layers, 2, 4, dtype=torch.float64)
    grads = []
    for module, kwargs in ((reference, {}), (model, {"adjoint": True})):
        xi, hi = x.clone().requires_grad_(True), hx.clone().requires_grad_(True)
        out, h_n = module(xi, hi, **kwargs)
        loss = out.sin().sum() + h_n.pow(2).sum()
        grads.append(torch.autograd.grad(loss, [xi, hi, *module.parameters()]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


class _Linear(torch.nn.Module):
    """dy/dt = A y, a field with a parameter."""

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.tensor([[-0.5, 1.0], [-1.0, -0.2]], dtype=torch.float64))

    def forward(self, t, y):
        return y @ self.A.T


def test_discrete_adjoint_recomputes_the_steps_in_the_backward_pass():
    field = _Linear()
    y0 = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    times = torch.arange(5.0, dtype=torch.float64)
    stats = SolverStats()
    kw = dict(method="rk4", step_size=0.25, rtol=1e-6, atol=1e-8, discontinuous=False)
    traj, nfe = integrate(field, y0, times, adjoint=True, stats=stats, **kw)
    assert nfe == stats.nfe == 4 * 4 * 4  # 4 intervals, 4 steps each, 4 stages
    assert stats.backward_nfe == 0
    traj.sum().backward()
    assert stats.backward_nfe == nfe  # each interval recomputed once
    grad = field.A.grad.clone()
    field.A.grad = None
    plain, _ = integrate(field, y0, times, **kw)
    plain.sum().backward()
    torch.testing.assert_close(grad, field.A.grad, rtol=0, atol=1e-13)
