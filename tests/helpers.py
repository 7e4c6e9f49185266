"""Independent references for the tests: numpy vector fields and scipy solutions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import torch


def numpy_input(kind: str, times: np.ndarray, samples: np.ndarray):
    """x(t) through (t_0, x_1), (t_1, x_1), ..., (t_T, x_T), built with numpy / scipy only."""
    knots = np.concatenate([samples[:1], samples])
    if kind == "linear":
        return lambda t: np.array([np.interp(t, times, knots[:, c]) for c in range(knots.shape[1])])
    if kind == "cubic":
        spline = scipy.interpolate.CubicSpline(times, knots, axis=0, bc_type="natural")
        return lambda t: spline(min(max(t, times[0]), times[-1]))
    raise ValueError(kind)


def elman_stack_rhs(model, x_of_t):
    """dh/dt of a unidirectional Elman (tanh) or linear stack coupled continuously, in numpy.

    Reads the weights as plain arrays and reimplements the field: layer l sees the hidden states
    of its sources (or the input) at the same instant.
    """
    L, H = model.num_layers, model.hidden_size
    layers = []
    for layer in range(L):
        f = model.field(layer)
        get = lambda p: None if p is None else p.detach().numpy()  # noqa: E731
        layers.append(
            (
                get(f.weight_ih),
                get(f.weight_hh),
                get(f.bias_ih),
                get(f.bias_hh),
                float(f.tau),
                model.sources(layer),
            )
        )
    sigma = (lambda z: z) if model.cell == "linear" else np.tanh

    def rhs(t, y):
        h = y.reshape(L, H)
        x = x_of_t(t)
        out = np.empty_like(h)
        for l, (wi, wh, bi, bh, tau, sources) in enumerate(layers):
            src = np.concatenate([x if j < 0 else h[j] for j in sources])
            z = wi @ src + wh @ h[l] + (0 if bi is None else bi + bh)
            out[l] = (sigma(z) - h[l]) / tau
        return out.ravel()

    return rhs


def solve_ivp_reference(rhs, times: np.ndarray, y0: np.ndarray, *, jumps=()) -> np.ndarray:
    """DOP853 at rtol = atol = 1e-13 through ``times``, restarting at every jump time."""
    cuts = sorted({float(times[0]), float(times[-1]), *map(float, jumps)})
    out = [y0]
    y = y0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        inside = times[(times > a) & (times <= b)]
        sol = scipy.integrate.solve_ivp(
            rhs, (a, b), y, method="DOP853", t_eval=inside, rtol=1e-13, atol=1e-13, first_step=None
        )
        assert sol.success, sol.message
        out.extend(sol.y.T)
        y = (
            sol.y[:, -1]
            if len(inside) and inside[-1] == b
            else scipy.integrate.solve_ivp(
                rhs, (a, b), y, method="DOP853", rtol=1e-13, atol=1e-13
            ).y[:, -1]
        )
    return np.array(out)


def observed_order(steps, errors) -> float:
    """Least-squares slope of log(error) against log(step)."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def assert_seed_finding(claim: dict, samples, control: float | None = None) -> None:
    """A finding over seeds: the mean of the per-seed numbers and the Student-t interval, p-value
    and MDE of one test against the bound (and the control's value, if given), recomputed from
    the metrics."""
    from rnnode.studies._stats import mean_test

    samples = np.asarray(samples, dtype=np.float64)
    expected = mean_test(samples, claim["bound"])
    assert claim["kind"] == "finding"
    assert claim["value"] == pytest.approx(samples.mean(), rel=1e-12, abs=1e-15)
    interval = [float(v) for v in claim["interval"]]  # JSON keeps infinities as strings
    assert interval == pytest.approx(list(expected.interval), rel=1e-12)
    assert claim["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
    assert float(claim["mde"]) == pytest.approx(expected.mde, rel=1e-12)
    assert claim["seeds"] == samples.shape[0]
    if control is not None:
        assert claim["control"]["value"] == pytest.approx(control, rel=1e-12, abs=1e-15)


def assert_seed_verification(claim: dict, samples) -> None:
    """A verification over seeds (``Context.verify_over_seeds``): its value is the seeds' mean."""
    samples = np.asarray(samples, dtype=np.float64)
    assert claim["kind"] == "verification" and "verdict" not in claim
    assert claim["value"] == pytest.approx(samples.mean(), rel=1e-12, abs=1e-15)
