"""Input paths against numpy.interp and scipy's natural cubic spline."""

import numpy as np
import pytest
import scipy.interpolate
import torch

from rnnode import CubicPath, HoldPath, LinearPath
from rnnode._paths import make_path


def _data(T=6, batch=2, channels=3, irregular=True):
    steps = torch.rand(T) + 0.3 if irregular else torch.ones(T)
    times = torch.cat([torch.zeros(1), steps.cumsum(0)]) - 0.5
    return times, torch.randn(T, batch, channels)


def _query(times, n=57):
    # Points inside every interval, the knots themselves, and points outside [t_0, t_T].
    inner = torch.linspace(float(times[0]), float(times[-1]), n)
    return torch.cat([inner, times, times[:1] - 0.7, times[-1:] + 0.9])


def test_hold_takes_the_sample_of_the_interval_that_ends_at_its_time():
    times, samples = _data()
    path = make_path("hold", times, samples)
    assert isinstance(path, HoldPath) and not path.is_continuous
    for t in _query(times):
        k = int(np.searchsorted(times.numpy(), float(t), side="right"))  # t in [t_{k-1}, t_k)
        expected = samples[min(max(k, 1), len(samples)) - 1]
        assert torch.equal(path.evaluate(t), expected)


def test_linear_matches_numpy_interp():
    times, samples = _data()
    path = make_path("linear", times, samples)
    assert isinstance(path, LinearPath) and path.is_continuous
    knots = torch.cat([samples[:1], samples]).numpy()
    for t in _query(times):
        expected = np.apply_along_axis(
            lambda v, t=float(t): np.interp(t, times.numpy(), v), 0, knots
        )
        np.testing.assert_allclose(path.evaluate(t).numpy(), expected, rtol=0, atol=1e-14)


def test_cubic_matches_scipy_natural_spline_and_is_constant_outside():
    times, samples = _data(T=9)
    path = make_path("cubic", times, samples)
    assert isinstance(path, CubicPath)
    knots = torch.cat([samples[:1], samples]).numpy()
    spline = scipy.interpolate.CubicSpline(times.numpy(), knots, axis=0, bc_type="natural")
    t_in = torch.linspace(float(times[0]), float(times[-1]), 101)
    got = torch.stack([path.evaluate(t) for t in t_in]).numpy()
    np.testing.assert_allclose(got, spline(t_in.numpy()), rtol=0, atol=1e-12)
    assert torch.equal(path.evaluate(times[0] - 3), path.evaluate(times[0]))
    assert torch.equal(path.evaluate(times[-1] + 3), path.evaluate(times[-1]))


@pytest.mark.parametrize("T", [1, 2, 3])
def test_cubic_with_few_knots_matches_scipy(T):
    times, samples = _data(T=T)
    path = make_path("cubic", times, samples)
    knots = torch.cat([samples[:1], samples]).numpy()
    spline = scipy.interpolate.CubicSpline(times.numpy(), knots, axis=0, bc_type="natural")
    for t in torch.linspace(float(times[0]), float(times[-1]), 13):
        np.testing.assert_allclose(path.evaluate(t).numpy(), spline(float(t)), atol=1e-13)


@pytest.mark.parametrize("kind", ["linear", "cubic"])
def test_reflection_reverses_time(kind):
    times, samples = _data()
    path = make_path(kind, times, samples)
    back = path.reflect()
    for t in _query(times)[:-2]:
        s = times[0] + times[-1] - t
        torch.testing.assert_close(back.evaluate(s), path.evaluate(t), rtol=0, atol=1e-13)


def test_hold_reflection_holds_each_sample_over_its_reversed_interval():
    times, samples = _data()
    back = make_path("hold", times, samples).reflect()
    s = back.times
    for j in range(1, len(s)):
        # On [s_{j-1}, s_j) the reversed direction consumes sample T - j + 1.
        mid = (s[j - 1] + s[j]) / 2
        assert torch.equal(back.evaluate(s[j - 1]), samples[-j])
        assert torch.equal(back.evaluate(mid), samples[-j])


@pytest.mark.parametrize("kind", ["hold", "linear", "cubic"])
def test_paths_are_differentiable_in_the_samples(kind):
    times, samples = _data(T=5, batch=1, channels=2)
    samples.requires_grad_(True)
    t = torch.tensor(1.234)
    assert torch.autograd.gradcheck(lambda v: make_path(kind, times, v).evaluate(t), (samples,))


def test_unknown_interpolation_names_the_argument():
    times, samples = _data()
    with pytest.raises(ValueError, match=r"interpolation: expected one of .*got 'spline'"):
        make_path("spline", times, samples)


@pytest.mark.parametrize("kind", ["hold", "linear", "cubic"])
def test_a_segment_is_the_path_on_its_interval(kind):
    times, samples = _data()
    path = make_path(kind, times, samples)
    for j in range(len(times) - 1):
        piece = path.segment(j)
        for t in torch.linspace(float(times[j]), float(times[j + 1]), 7)[:-1]:
            torch.testing.assert_close(piece.evaluate(t), path.evaluate(t), rtol=0, atol=1e-14)
        # Closed at the right end: the interval's own sample (hold) or the continuous value.
        end = piece.evaluate(times[j + 1])
        expected = samples[j] if kind == "hold" else path.evaluate(times[j + 1])
        torch.testing.assert_close(end, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("interpolation", ["hold", "linear", "cubic"])
def test_evaluation_at_a_named_interval_equals_the_host_lookup(interpolation):
    times, samples = _data()
    path = make_path(interpolation, times, samples)
    T = len(times) - 1
    for j in range(T):
        # inside the interval, and just after its start (where a held path jumps)
        for t in (times[j] + 0.3 * (times[j + 1] - times[j]), torch.nextafter(times[j], times[-1])):
            expected = path.evaluate(t)
            assert torch.equal(path.evaluate(t, j), expected)
            assert torch.equal(path.evaluate_near(t, j), expected)
            if j > 0:  # evaluate_near(t, j - 1) covers [t_{j-1}, t_{j+1}), picking on the device
                assert torch.equal(path.evaluate_near(t, j - 1), expected)
        if j + 1 < T:
            assert torch.equal(path.evaluate_near(times[j + 1], j), path.evaluate(times[j + 1]))


def _host_reads(monkeypatch):
    """Count every copy of a tensor to the host (float, int, bool, item, tolist)."""
    calls = []
    for name in ("__float__", "__int__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            calls.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("coupling", ["sampled", "continuous"])
@pytest.mark.parametrize("interpolation", ["hold", "cubic"])
def test_fixed_step_solves_copy_nothing_to_the_host_per_step(coupling, interpolation, monkeypatch):
    # Host copies per solve are a constant (checks, grids, the final finiteness check); none
    # per step or evaluation: a solve over 4 times as many steps makes exactly as many.
    import rnnode

    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 3, num_layers=2).double()
    kw = dict(coupling=coupling, interpolation=interpolation, method="rk4", step_size=0.5)
    counts = []
    for T in (2, 3, 12):  # the first solve fills caches (the fields' tau = 1 checks)
        x = torch.randn(T, 2, 2, dtype=torch.float64)
        with monkeypatch.context() as m:
            calls = _host_reads(m)
            out, _ = model(x, **kw)
            out.sum().backward()
        counts.append(len(calls))
    assert counts[1] == counts[2]


def test_adaptive_solves_look_up_no_interval_on_the_host_per_evaluation(monkeypatch):
    import rnnode
    from rnnode._paths import InputPath

    lookups = []
    original = InputPath._interval
    monkeypatch.setattr(
        InputPath, "_interval", lambda self, t: lookups.append(1) or original(self, t)
    )
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 3, num_layers=2).double()
    x = torch.randn(6, 2, 2, dtype=torch.float64)
    sol = model.solve(x, coupling="continuous", method="dopri5", rtol=1e-6, atol=1e-8)
    # only the solver's start (its first evaluation and the one that picks the first step)
    assert len(lookups) <= 2 < sol.nfe
