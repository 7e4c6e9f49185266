"""The LTC's continuous limit: the weights of an ncps LTC solved by rnnode's dopri5 converge to
scipy's solve_ivp on the LTC ODE (written here in numpy from ncps's parameters), and ncps's fused
step converges to that solution at first order in the unfold count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import torch

import rnnode
from tests.helpers import observed_order

ncps_torch = pytest.importorskip(
    "ncps.torch", reason="needs ncps: the extra rnnode[ncps], part of rnnode[dev]"
)
from ncps import wirings  # noqa: E402


def _numpy_ltc(cell):
    """dv/dt of the LTC ODE from an ncps LTCCell's parameters (softplus as its constraints say)."""
    get = {n: p.detach().numpy().astype(np.float64) for n, p in cell.named_parameters()}

    def pos(a):
        return np.logaddexp(0.0, a) if cell._implicit_param_constraints else a

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    def rate(v, x):
        xm = x * get["input_w"] + get["input_b"]
        s_act = pos(get["sensory_w"]) * sig(
            get["sensory_sigma"] * (xm[:, None] - get["sensory_mu"])
        )
        s_act = s_act * get["sensory_sparsity_mask"]
        act = pos(get["w"]) * sig(get["sigma"] * (v[:, None] - get["mu"])) * get["sparsity_mask"]
        current = pos(get["gleak"]) * (get["vleak"] - v)
        current += (act * (get["erev"] - v[None, :])).sum(0)
        current += (s_act * (get["sensory_erev"] - v[None, :])).sum(0)
        return current / pos(get["cm"])

    return rate


def _problem(seed=0):
    torch.manual_seed(seed)
    module = ncps_torch.LTC(2, wirings.AutoNCP(8, 2, seed=1)).double()
    model = rnnode.from_ncps(module)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(1, 5, 2, generator=g, dtype=torch.float64)
    spans = 0.3 + 1.2 * torch.rand(5, generator=g, dtype=torch.float64)
    times = torch.cat([torch.zeros(1, dtype=torch.float64), spans.cumsum(0)])
    h0 = 0.2 * torch.randn(1, 8, generator=g, dtype=torch.float64)
    return module, model, x, times, h0


def _reference(module, x, times, h0):
    """solve_ivp (DOP853, rtol = atol = 1e-13) interval by interval, the input held."""
    rate = _numpy_ltc(module.rnn_cell)
    v = h0[0].numpy()
    out = [v]
    for k in range(x.shape[1]):
        xk = x[0, k].numpy()
        sol = scipy.integrate.solve_ivp(
            lambda t, y, xk=xk: rate(y, xk),
            (float(times[k]), float(times[k + 1])),
            v,
            method="DOP853",
            rtol=1e-13,
            atol=1e-13,
        )
        assert sol.success, sol.message
        v = sol.y[:, -1]
        out.append(v)
    return np.array(out)


def test_dopri5_converges_to_solve_ivp_on_the_ltc_ode():
    module, model, x, times, h0 = _problem()
    expected = _reference(module, x, times, h0)
    with torch.no_grad():
        sol = model.solve(x, h0.unsqueeze(0), t=times, method="dopri5", rtol=1e-11, atol=1e-12)
    got = sol.states[0, 0, :, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # The fused step at ncps's 6 unfolds is visibly not the ODE's solution.
    with torch.no_grad():
        fused = model.solve(x, h0.unsqueeze(0), t=times).states[0, 0, :, 0].numpy()
    assert np.abs(fused - expected).max() > 1e-3


def test_fused_step_is_first_order_in_the_unfolds():
    """Error at the sample times against the ODE's solution for 16..128 unfolds: slope 1 in
    log(error) against log(dt) (a semi-implicit Euler step; measured 1.00)."""
    module, model, x, times, h0 = _problem()
    expected = _reference(module, x, times, h0)
    unfolds = [16, 32, 64, 128]
    errors = []
    with torch.no_grad():
        for n in unfolds:
            sol = model.solve(x, h0.unsqueeze(0), t=times, options={"unfolds": n})
            errors.append(np.abs(sol.states[0, 0, :, 0].numpy() - expected).max())
    order = observed_order([1.0 / n for n in unfolds], errors)
    assert 0.9 < order < 1.1, errors
