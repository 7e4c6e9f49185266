"""Regression tests: analysis functions refuse or flag what would be a silently wrong number,
and follow one return rule (detached torch tensors unless create_graph=True)."""

import warnings

import numpy as np
import pytest
import torch

import rnnode
from rnnode.analysis import (
    STEP_POLYNOMIALS,
    depth_jacobian,
    eigenvalues,
    find_fixed_points,
    fit_accuracy_model,
    gradient_norms,
    jacobian,
    linear_memory_function,
    lyapunov_exponents,
    measure_gain,
    memory_function,
    preferred_frequencies,
    scale_recurrent_and_input,
    spectral_radius,
    stability_map,
    stable_variance,
)
from rnnode.analysis.gain import Peaks

OMEGAS = [0.3, 1.0, 2.0]


# -- the return rule -----------------------------------------------------------------------------


def test_every_numeric_result_is_a_detached_tensor_unless_the_graph_is_asked_for():
    model = rnnode.ODERNN(1, 2, 2)
    h, x = 0.1 * torch.ones(2, 2), torch.zeros(1)
    results = {
        "jacobian": jacobian(model, h, x),
        "eigenvalues": eigenvalues(model, h, x),
        "FixedPoints.points": find_fixed_points(model, x, 2).points,
        "lyapunov_exponents": lyapunov_exponents(model, h, x, duration=2.0),
        "measure_gain": measure_gain(model, OMEGAS, num_steps=40),
    }
    smap = stability_map(model, [0.5, 1.0], [0.0])
    for name in ("p", "q", "max_real", "spectral_radius", "fixed_points", "converged"):
        results[f"StabilityMap.{name}"] = getattr(smap, name)
    for name, value in results.items():
        assert isinstance(value, torch.Tensor), name
        assert not value.requires_grad, name
        value.numpy()  # works on a detached CPU tensor
    assert isinstance(smap.numpy().max_real, np.ndarray)
    kept = jacobian(model, h, x, create_graph=True)
    assert kept.requires_grad
    (grad,) = torch.autograd.grad(kept.sum(), model.field(0).weight_hh)
    assert grad.abs().sum() > 0
    assert eigenvalues(model, h, x, create_graph=True).requires_grad


# -- measure_gain ---------------------------------------------------------------------------------


def _tanh_stack(dtype):
    torch.manual_seed(0)
    return rnnode.ODERNN(1, 4, 2).to(dtype)


def test_measure_gain_flags_an_amplitude_lost_to_float32_rounding():
    model = _tanh_stack(torch.float32)
    with pytest.warns(RuntimeWarning, match="amplitude: layer 1.*within 1000 eps"):
        measure_gain(model, OMEGAS, amplitude=1e-9, num_steps=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measure_gain(model, OMEGAS, amplitude=1e-2, num_steps=60)


def test_measure_gain_refuses_an_amplitude_below_the_normal_range():
    with pytest.raises(ValueError, match="amplitude: expected at least tiny / eps"):
        measure_gain(_tanh_stack(torch.float64), OMEGAS, amplitude=1e-300)


def test_measure_gain_flags_an_unstable_layer():
    model = rnnode.ODERNN(1, 1, 1, cell="linear", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.fill_(1.05)  # |a| > 1: grows, no steady state
    with pytest.warns(RuntimeWarning, match="layer 1 has no steady state"):
        measure_gain(model, OMEGAS, num_steps=200)


def test_measure_gain_takes_numpy_amplitudes_and_converts_torch_modules():
    model = _tanh_stack(torch.float64)
    plain = measure_gain(model, OMEGAS, 1e-3, num_steps=60)
    for amplitude in (np.float64(1e-3), np.float32(1e-3)):
        got = measure_gain(model, OMEGAS, amplitude, num_steps=60)
        np.testing.assert_allclose(got.numpy(), plain.numpy(), rtol=1e-6)
    module = torch.nn.GRU(1, 3, 2).double()
    # The same computation; vectorised sums may round differently between calls (1 ulp), and
    # the fit over 30 samples at omega = 0.3 (1.4 periods) is ill-conditioned (seen: 2e-13).
    np.testing.assert_allclose(
        measure_gain(module, OMEGAS, num_steps=60).numpy(),
        measure_gain(rnnode.from_torch(module), OMEGAS, num_steps=60).numpy(),
        rtol=1e-10,
    )
    with pytest.raises(TypeError, match="model: expected an rnnode.ODERNN.*from_torch"):
        measure_gain(torch.nn.Linear(1, 1), OMEGAS)
    with pytest.raises(TypeError, match="amplitude: expected a positive finite number"):
        measure_gain(model, OMEGAS, "0.1")


def test_measure_gain_refuses_t_in_its_solve_keywords():
    with pytest.raises(ValueError, match="t: measure_gain sets the sample times.*pass dt"):
        measure_gain(_tanh_stack(torch.float64), OMEGAS, t=torch.arange(401.0))


# -- Lyapunov exponents --------------------------------------------------------------------------


def test_lyapunov_exponents_refuse_nan_input_and_raise_on_an_exploding_flow():
    model = rnnode.ODERNN(1, 2, 1, cell="linear", bias=False)
    h = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="h0: expected finite"):
        lyapunov_exponents(model, torch.full((1, 2), float("nan")), torch.zeros(1))
    with pytest.raises(ValueError, match="x: expected finite"):
        lyapunov_exponents(model, h, torch.full((1,), float("nan")))
    with torch.no_grad():
        model.field(0).weight_hh.copy_(torch.eye(2) * 400.0)  # dh/dt = 399 h
    with pytest.raises(rnnode.DivergenceError, match="non-finite"):
        lyapunov_exponents(model, torch.ones(1, 2), torch.zeros(1), duration=200.0)


def test_lyapunov_exponents_refuse_durations_and_intervals_off_the_grid():
    model = rnnode.ODERNN(1, 2, 1)
    h, x = torch.zeros(1, 2), torch.zeros(1)
    with pytest.raises(ValueError, match="duration: expected a multiple of"):
        lyapunov_exponents(model, h, x, duration=2.5, interval=1.0)
    with pytest.raises(ValueError, match="interval: expected a multiple of step_size"):
        lyapunov_exponents(model, h, x, interval=0.25, step_size=0.1)
    with pytest.raises(ValueError, match="transient: expected a multiple of step_size"):
        lyapunov_exponents(model, h, x, transient=0.05, step_size=0.1)
    # On the grid: 0.3 / 0.1 is 2.9999999999999996 in floating point, and still accepted.
    lyapunov_exponents(model, h, x, duration=0.6, interval=0.3, step_size=0.1)


def test_lyapunov_exponents_step_on_the_solves_grid():
    # Euler with step 0.5 on a linear field: the tangent map per step is I + 0.5 A exactly,
    # so the exponents are log |eig(I + 0.5 A)| / 0.5 (A diagonal: QR keeps the axes).
    model = rnnode.ODERNN(1, 2, 1, cell="linear", bias=False)
    W = torch.tensor([[0.2, 0.0], [0.0, -0.3]])
    with torch.no_grad():
        model.field(0).weight_hh.copy_(W)
    got = lyapunov_exponents(
        model,
        torch.zeros(1, 2),
        torch.zeros(1),
        duration=4.0,
        interval=1.0,
        method="euler",
        step_size=0.5,
    )
    step = np.eye(2) + 0.5 * (W.numpy() - np.eye(2))
    expected = np.log(np.abs(np.diag(step))) / 0.5
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


# -- fixed points and stability maps --------------------------------------------------------------


def test_fixed_points_refuse_nan_input():
    with pytest.raises(ValueError, match="x: expected finite"):
        find_fixed_points(rnnode.ODERNN(1, 2, 1), torch.tensor([float("nan")]))


def test_float32_stability_map_has_no_nan_holes():
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 4, 2).float()
    smap = stability_map(model, np.linspace(0.2, 1.5, 5), np.linspace(-1.0, 1.0, 4))
    assert bool(smap.converged.all())
    assert bool(torch.isfinite(smap.max_real).all())
    assert smap.max_real.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tol": 0.0}, ValueError, "tol: expected a positive"),
        ({"tol": -1e-3}, ValueError, "tol: expected a positive"),
        ({"max_iter": 0}, ValueError, "max_iter: expected a positive integer"),
        ({"max_iter": 2.5}, TypeError, "max_iter: expected a positive integer"),
        ({"radius": float("nan")}, ValueError, "radius: expected a non-negative finite"),
        ({"num_starts": 0}, ValueError, "num_starts: expected a positive integer"),
    ],
)
def test_stability_map_refuses_bad_newton_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        stability_map(rnnode.ODERNN(1, 2, 1), [1.0], [0.0], **kwargs)


def test_fixed_points_refuse_a_negative_dedup_tolerance():
    with pytest.raises(ValueError, match="dedup_tol: expected a non-negative"):
        find_fixed_points(rnnode.ODERNN(1, 2, 1), torch.zeros(1), dedup_tol=-1.0)


def test_step_polynomials_only_name_installed_methods_and_maps_find_the_input_size():
    assert set(STEP_POLYNOMIALS) <= set(rnnode.FIXED_METHODS)
    wrapped = torch.nn.ModuleDict({"rnn": rnnode.ODERNN(3, 2, 2)})
    params = dict(wrapped.named_parameters())
    overrides, x = scale_recurrent_and_input(params, torch.tensor(2.0), torch.tensor(0.5))
    assert x.shape == (3,) and set(overrides) == {
        "rnn.layers.0.weight_hh",
        "rnn.layers.1.weight_hh",
    }


# -- preferred frequencies and the depth fit ------------------------------------------------------


def test_preferred_frequencies_skip_nan_and_flag_edge_peaks():
    omegas = [0.1, 0.5, 1.0, 2.0]
    gains = np.array(
        [[1.0, np.nan, 3.0, 2.0], [4.0, 3.0, 2.0, 1.0], [np.nan] * 4, [1.0, 2.0, 3.0, 4.0]]
    )
    peaks = preferred_frequencies(omegas, gains, return_edges=True)
    assert isinstance(peaks, Peaks)
    np.testing.assert_array_equal(peaks.omega.numpy(), [1.0, 0.1, np.nan, 2.0])
    np.testing.assert_array_equal(peaks.at_edge.numpy(), [False, True, False, True])
    with pytest.warns(RuntimeWarning, match=r"layer\(s\) \[2, 4\] is at the edge"):
        old = preferred_frequencies(omegas, gains)
    np.testing.assert_array_equal(old.numpy(), peaks.omega.numpy())


def test_fit_accuracy_model_respects_m_and_a_max_bounds_and_flat_data():
    with pytest.raises(ValueError, match=r"m_bounds: expected 0 < low < high <= 1"):
        fit_accuracy_model(np.arange(6), np.linspace(0.2, 0.8, 6), m_bounds=(0.1, 2.0))
    flat = fit_accuracy_model(np.arange(6), np.full(6, 0.5))
    assert flat == {"a_min": 0.5, "a_max": 0.5, "b": 20.0, "m": 1.0}
    depths = np.arange(1, 13)
    rising = 1.0 - 0.6 * np.exp(-0.5 * depths)  # saturates at 1: a_max may not pass it
    fit = fit_accuracy_model(depths, rising)
    assert fit["a_max"] <= 1.0 and fit["m"] <= 1.0


# -- stability-map speed-ups: same numbers ------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3])
def test_block_eigenvalues_closed_forms_and_threads_match_numpy(size, monkeypatch):
    import rnnode.analysis.jacobians as jacobians

    monkeypatch.setattr(jacobians, "_EIG_SPLIT", 4)  # force the threaded path on a small batch
    gen = torch.Generator().manual_seed(size)
    jac = torch.randn(40, 3 * size, 3 * size, generator=gen)
    jac[:, 0, :] *= 1e-8  # nearly repeated roots in some blocks: the closed form stays accurate
    got = jacobians._block_eigenvalues(jac, 3).numpy()
    for i in range(40):
        for l in range(3):
            block = jac[i, l * size : (l + 1) * size, l * size : (l + 1) * size].numpy()
            expected = np.sort_complex(np.linalg.eigvals(block))
            ours = np.sort_complex(got[i, l * size : (l + 1) * size])
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name",
    [
        "gain",
        "jacobians",
        "fixed_points",
        "stability_maps",
        "lyapunov",
        "gradients",
        "depth",
        "plots",
        "linear",
        "meanfield",
        "memory",
    ],
)
def test_every_public_analysis_module_lists_its_names(name):
    import importlib
    import pydoc

    module = importlib.import_module(f"rnnode.analysis.{name}")
    assert module.__all__ and all(hasattr(module, n) for n in module.__all__)
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    assert all(n in text for n in module.__all__ if callable(getattr(module, n)))
    package = importlib.import_module("rnnode.analysis")
    assert all(hasattr(package, n) for n in package.__all__)


# -- one validation rule: wrong type -> TypeError, wrong value -> ValueError ----------------------


def _model():
    return rnnode.ODERNN(1, 2, 2, cell="rnn")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # a 0-d tensor is not taken for a number (pass float(t))
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, tol=torch.tensor(1e-8)), "tol: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, noise=torch.tensor(0.1)), "noise: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, opt_steps=1.0), "opt_steps: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, kind=1), "kind: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, seed="0"), "seed: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2.0), "starts: "),
        (lambda m: find_fixed_points(m, "zero", 2), "x: "),
        (lambda m: jacobian(m, [[0.0, 0.0], [0.0, 0.0]], torch.zeros(1)), "h: "),
        (lambda m: spectral_radius(torch.zeros(2), "euler", torch.tensor(1.0)), "dt: "),
        (lambda m: spectral_radius([0.0], "euler"), "eigvals: "),
        (lambda m: spectral_radius(torch.zeros(2), None), "method: "),
        (lambda m: stability_map(m, [1.0], [0.0], num_starts=2.0), "num_starts: "),
        (lambda m: stability_map(m, [1.0], [0.0], dt="1"), "dt: "),
        (lambda m: stability_map(m, ["a"], [0.0]), "p_values: "),
        (lambda m: stability_map(m, [1.0], [0.0], parametrize=3), "parametrize: "),
        (lambda m: lyapunov_exponents(m, torch.zeros(2, 2), torch.zeros(1), duration="1"), "dur"),
        (
            lambda m: lyapunov_exponents(m, torch.zeros(2, 2), torch.zeros(1), num_exponents=1.0),
            "num_exponents: ",
        ),
        (lambda m: lyapunov_exponents(m, [0.0], torch.zeros(1)), "h0: "),
        (
            lambda m: depth_jacobian(m, torch.zeros(2, 2), torch.zeros(1), dt=torch.tensor(1.0)),
            "dt: ",
        ),
        (lambda m: gradient_norms(m, torch.zeros(3, 1), "sum"), "loss_fn: expected a function"),
        (lambda m: gradient_norms(m, torch.zeros(3, 1), lambda o, h: 1.0), "loss_fn: expected a"),
        (lambda m: gradient_norms(torch.nn.RNN(1, 2), torch.zeros(3, 1), None), "model: "),
        (lambda m: fit_accuracy_model("abc", [0.5] * 3), "depths: "),
        (lambda m: fit_accuracy_model([0, 1, 2, 3], [0.5] * 4, b_bounds=("a", "b")), "b_bounds: "),
        (lambda m: stable_variance("1.0"), "weight_variance: "),
        (lambda m: memory_function(np.zeros((9, 2)), np.zeros(9), 2.0), "max_delay: "),
        (
            lambda m: memory_function(np.zeros((9, 2)), np.zeros(9), 2, train_fraction="a"),
            "train_fraction: ",
        ),
        (lambda m: linear_memory_function(np.zeros((2, 2)), None, 2), "b: "),
    ],
)
def test_wrong_types_raise_type_errors_naming_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call(_model())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: find_fixed_points(m, torch.zeros(1), 0), "starts: expected a positive"),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, opt_steps=-1), "opt_steps: "),
        (lambda m: find_fixed_points(m, torch.zeros(1), 2, kind="map"), "kind: "),
        (
            lambda m: lyapunov_exponents(m, torch.zeros(2, 2), torch.zeros(1), num_exponents=5),
            "num_exponents: expected an integer in",
        ),
        (lambda m: depth_jacobian(m, torch.zeros(2, 2), torch.zeros(1), dt=0.0), "dt: "),
        (lambda m: gradient_norms(m, torch.zeros(3, 1), lambda o, h: o), "loss_fn: expected a s"),
        (lambda m: fit_accuracy_model([0, 1, 2, 3], [0.5] * 4, b_bounds=(1, 2, 3)), "b_bounds"),
        (lambda m: memory_function(np.zeros((9, 2)), np.zeros(9), 0), "max_delay: "),
        (
            lambda m: memory_function(np.zeros((9, 2)), np.zeros(9), 2, train_fraction=1.0),
            "train_fraction: ",
        ),
    ],
)
def test_wrong_values_raise_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(_model())
