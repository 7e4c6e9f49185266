"""Solves on a CUDA device: the same numbers as on the CPU, gradients, the bridge to torch, and
no host synchronisation per step. Skipped, with the reason, where no CUDA GPU is present."""

import warnings

import pytest
import torch
from torch import nn

import rnnode

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine",
)

SOLVES = [
    pytest.param({}, id="bridge-default"),
    pytest.param({"coupling": "continuous", "method": "rk4", "step_size": 0.5}, id="rk4"),
    pytest.param(
        {"coupling": "continuous", "method": "dopri5", "rtol": 1e-8, "atol": 1e-10}, id="dopri5"
    ),
    pytest.param({"method": "rk4", "interpolation": "cubic", "adjoint": True}, id="adjoint"),
]


def _pair(cell="rnn", **kwargs):
    torch.manual_seed(0)
    cpu = rnnode.ODERNN(3, 8, num_layers=3, cell=cell, **kwargs).double()
    gpu = rnnode.ODERNN(3, 8, num_layers=3, cell=cell, **kwargs).double().cuda()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("solve", SOLVES)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_solve_on_cuda_equals_solve_on_cpu(cell, solve):
    cpu, gpu = _pair(cell)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    out_c, _ = cpu(x, **solve)
    out_g, _ = gpu(x.cuda(), **solve)
    assert out_g.device.type == "cuda"
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=0, atol=1e-10)


@pytest.mark.parametrize("solve", SOLVES)
def test_gradients_on_cuda_equal_gradients_on_cpu(solve):
    cpu, gpu = _pair("gru")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    grads = []
    for model, xs in ((cpu, x.clone()), (gpu, x.cuda())):
        xs.requires_grad_(True)
        out, _ = model(xs, **solve)
        out.pow(2).sum().backward()
        grads.append([xs.grad.cpu()] + [p.grad.cpu() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10)


def test_per_sample_times_on_cuda_equal_cpu():
    cpu, gpu = _pair()
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    t = torch.cat([torch.zeros(1, 3), (torch.rand(5, 3) + 0.2).cumsum(0)]).double()
    kw = dict(coupling="continuous", method="rk4", step_size=0.3)
    out_c, _ = cpu(x, t=t, **kw)
    out_g, _ = gpu(x.cuda(), t=t.cuda(), **kw)
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bridge_equals_torch_on_cuda(cell):
    torch.manual_seed(0)
    reference = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](3, 8, num_layers=2)
    reference = reference.double().cuda()
    model = rnnode.from_torch(reference)
    x = torch.randn(7, 4, 3, dtype=torch.float64, device="cuda")
    expected, _ = reference(x)
    got, _ = model(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_fixed_step_solve_synchronises_a_constant_number_of_times():
    # torch reports every synchronising call; a solve over 4 times the steps makes as many.
    torch.manual_seed(0)
    model = rnnode.ODERNN(3, 8, num_layers=3).double().cuda()
    kw = dict(coupling="continuous", method="rk4", step_size=0.5)
    counts = []
    for T in (4, 16):
        x = torch.randn(T, 2, 3, dtype=torch.float64, device="cuda")
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                out, _ = model(x, **kw)
                out.sum().backward()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(w.message).lower() for w in caught))
    assert counts[0] == counts[1]
