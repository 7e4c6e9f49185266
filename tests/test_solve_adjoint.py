"""adjoint=True: the discrete adjoint of fixed-step methods, the continuous one of adaptive ones."""

import pytest
import torch

import rnnode
from rnnode import SolverStats, integrate


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
    traj = integrate(field, y0, times, adjoint=True, stats=stats, **kw)
    nfe = stats.nfe
    assert nfe == 4 * 4 * 4  # 4 intervals, 4 steps each, 4 stages
    assert stats.backward_nfe == 0
    traj.sum().backward()
    assert stats.backward_nfe == nfe  # each interval recomputed once
    grad = field.A.grad.clone()
    field.A.grad = None
    plain = integrate(field, y0, times, **kw)
    plain.sum().backward()
    torch.testing.assert_close(grad, field.A.grad, rtol=0, atol=1e-13)


class _Segmentable(torch.nn.Module):
    """dy/dt = tanh(y W^T + u(t)) - y over a path, offering the adjoint's segment protocol,
    including ``with_path_tensors`` (the field reading leaf copies of its path's tensors)."""

    def __init__(self, path, weight):
        super().__init__()
        self.path = path
        self.weight = weight

    def forward(self, t, y):
        return torch.tanh(y @ self.weight.T + self.path.evaluate(t)) - y

    def segment(self, j):
        return _Segmentable(self.path.segment(j), self.weight)

    def path_tensors(self):
        return self.path.coefficients()

    def with_path_tensors(self, tensors):
        return _Segmentable(type(self.path)(self.path.times, tuple(tensors)), self.weight)


@pytest.mark.parametrize("interpolation", ["hold", "cubic"])
def test_adjoint_on_leaf_copies_of_the_path_gives_backprops_gradients(interpolation):
    """The path is another computation's output (as layer 1's is for layer 2): the adjoint reads
    leaf copies of its rows, and the gradients still reach the computation upstream."""
    from rnnode._paths import make_path

    torch.manual_seed(0)
    times = torch.cat([torch.zeros(1), (0.5 + torch.rand(4)).cumsum(0)]).double()
    upstream = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.nn.Parameter(0.5 * torch.randn(3, 3, dtype=torch.float64))
    y0 = torch.zeros(2, 3, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        field = _Segmentable(make_path(interpolation, times, torch.sin(upstream)), weight)
        traj = integrate(
            field, y0, times, method="dopri8", step_size=None, rtol=1e-11, atol=1e-11,
            discontinuous=interpolation == "hold", adjoint=adjoint,
        )  # fmt: skip
        grads.append(torch.autograd.grad(traj.pow(2).sum(), [upstream, weight]))
    # As for the stack (tests/test_solve.py): a held input's jumps cost the adjoint accuracy.
    tol = 1e-6 if interpolation == "hold" else 1e-8
    for a, b in zip(*grads, strict=True):
        assert float(a.abs().max()) > 1e-2
        torch.testing.assert_close(b, a, rtol=0, atol=tol)
