"""The dynamics studies (stability_maps, vanishing_gradients, skip_paths): their quick runs
through the real runner, the claims in their metrics, and their helpers against independent
references (closed forms, brute-force path enumeration, numpy).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import run_study, skip_paths, stability_maps
from rnnode.studies import vanishing_gradients as vanishing
from rnnode.studies._claims import check_claims
from rnnode.studies._stats import bootstrap_interval, sign_test

STUDIES = {
    "stability_maps": stability_maps,
    "vanishing_gradients": vanishing,
    "skip_paths": skip_paths,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every study's quick run, once, into a temporary folder: {name: (folder, metrics)}."""
    out = tmp_path_factory.mktemp("runs")
    done = {}
    for name, module in STUDIES.items():
        metrics = run_study(module, out=out, quick=True, seed=0, workers=1, show_progress=False)
        done[name] = (out / f"{name}-quick", metrics)
    return done


def assert_seed_finding(claim: dict, samples) -> None:
    """A finding over seeds: the mean of the per-seed numbers, their bootstrap interval and the
    sign test against the bound, recomputed here from the metrics."""
    samples = np.asarray(samples, dtype=np.float64)
    assert claim["value"] == pytest.approx(samples.mean(), rel=1e-12, abs=1e-15)
    interval = [float(v) for v in claim["interval"]]  # JSON keeps infinities as strings
    assert interval == pytest.approx(list(bootstrap_interval(samples)), rel=1e-12)
    assert claim["p_value"] == pytest.approx(sign_test(samples - claim["bound"]), rel=1e-12)
    assert claim["seeds"] == samples.size


def _holds(metrics, name):
    return metrics["claims"][name]["holds"]


@pytest.mark.parametrize("name", list(STUDIES))
def test_quick_run_writes_its_files_and_claims(runs, name):
    folder, metrics = runs[name]
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert (folder / "report.html").exists()
    assert metrics["claims"], "a study must check at least one claim"
    for claim in metrics["claims"].values():
        assert isinstance(claim["holds"], bool) and claim["statement"]
    check_claims(metrics["claims"])
    for claim in metrics["claims"].values():
        if claim["kind"] == "verification":
            assert claim["holds"], claim["statement"]  # code checks, not findings
    assert list(folder.glob("*.png")) and list(folder.glob("*.pdf"))


# -- skip_paths -------------------------------------------------------------------------------


def brute_force_paths(num_layers: int, skips) -> int:
    """Sequences of offsets from ``skips`` that step from layer L exactly down to layer 1."""
    total = 0
    for length in range(num_layers):
        for steps in itertools.product(skips, repeat=length):
            total += sum(steps) == num_layers - 1
    return total


@pytest.mark.parametrize("n", range(1, 15))
def test_binet_is_the_fibonacci_recurrence(n):
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    assert skip_paths.binet(n) == a


@pytest.mark.parametrize("skips", skip_paths.PATTERNS)
@pytest.mark.parametrize("num_layers", [1, 2, 5, 7])
def test_measured_paths_equal_brute_force_enumeration(skips, num_layers):
    assert skip_paths.measured_paths(num_layers, skips) == brute_force_paths(num_layers, skips)


def test_skip_paths_quick_run(runs):
    _, m = runs["skip_paths"]
    layers = m["layers"]
    assert m["fibonacci"] == [brute_force_paths(n, (1, 2)) for n in layers]
    for key, values in m["measured_paths"].items():
        skips = tuple(json.loads(key))
        assert values == [float(brute_force_paths(n, skips)) for n in layers]
    tanh = m["tanh"]
    ratio = np.array(tanh["ratio_skip_over_plain"])
    np.testing.assert_allclose(tanh["median_ratio"], np.median(ratio, axis=1), rtol=1e-14)
    plain = np.array(tanh["layer1_gradient"]["plain"])
    slopes = [np.polyfit(tanh["depths"], np.log(c), 1)[0] for c in plain.T]
    assert_seed_finding(m["claims"]["plain_vanishes"], slopes)
    assert_seed_finding(m["claims"]["skips_carry_gradient"], np.log10(ratio[-1]))
    for name in ("fibonacci_counts", "measured_equals_count"):
        assert _holds(m, name)


# -- stability_maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [-0.7, -0.05, 0.3])
def test_growth_rate_recovers_an_exponential(rate):
    t = np.arange(60)
    norms = 1e-7 * np.exp(rate * t)
    assert stability_maps.growth_rate(norms) == pytest.approx(rate, abs=1e-12)


def test_perturbation_of_a_linear_stack_is_the_matrix_exponential():
    """dh/dt = (W - I) h + W_ih x on one layer: delta_t = expm((W - I) t) delta_0 (scipy)."""
    from scipy.linalg import expm

    model = rnnode.ODERNN(1, 3, 1, cell="linear")
    field = model.field(0)
    x = 0.4
    A = (field.weight_hh - torch.eye(3)).detach().numpy()
    b = (field.weight_ih[:, 0] * x + field.bias_ih + field.bias_hh).detach().numpy()
    star = np.linalg.solve(A, -b)[None]  # (layers, state)
    norms = stability_maps.perturbation(model, 1.0, x, star, 5, method="rk4", step_size=0.01)
    generator = torch.Generator().manual_seed(1)
    delta = torch.randn(1, 3, generator=generator, dtype=torch.float64).numpy()[0]
    delta *= stability_maps.DELTA0 / np.linalg.norm(delta)
    expected = [np.linalg.norm(expm(A * t) @ delta) for t in range(6)]
    # RK4 at step 0.01: relative error ~1e-10 on norms of 1e-7; the fixed point is exact here.
    np.testing.assert_allclose(norms, expected, rtol=1e-8, atol=1e-16)


def test_stability_maps_quick_run(runs):
    _, m = runs["stability_maps"]
    counts = m["counts"]
    assert counts["euler_stable_but_ode_unstable"] == 0
    assert 0 < counts["euler_stable"] <= counts["rk4_stable"]
    assert m["max_eigenvalue_error"] < stability_maps.EIG_TOL
    assert m["max_numpy_residual"] < stability_maps.ROOT_TOL
    max_real = np.array(m["max_real"], dtype=float)
    radius = np.array(m["euler_spectral_radius"], dtype=float)
    # Where the RNN's step map contracts, the ODE's eigenvalues have negative real parts.
    assert np.all(max_real[radius < 1] < 0)
    trajectories = m["trajectories"]
    assert {"stable", "unstable"} <= set(trajectories)
    for t in trajectories.values():
        assert np.sign(t["ode_rate"]) == np.sign(t["max_real"])
        assert np.sign(t["rnn_rate"]) == np.sign(t["log_euler_radius"])
    assert trajectories["stable"]["max_real"] < 0 < trajectories["unstable"]["max_real"]
    for name in m["claims"]:
        assert _holds(m, name), name


# -- vanishing_gradients ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", vanishing.VARIANTS)
def test_readout_loss_is_the_sequence_models_loss(variant):
    torch.manual_seed(3)
    model = vanishing.build(variant, 3, 4)
    x, y = torch.randn(5, 2, 1), torch.randn(2, 1)
    solution = model.rnn.solve(x)
    ours = vanishing.readout_loss(model, y)(solution.output, solution.h_n)
    theirs, _ = model.loss(x.transpose(0, 1), y)
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-13)


def test_per_layer_factor_recovers_a_geometric_decay():
    depths = [1, 2, 4, 8, 16]
    assert vanishing.per_layer_factor(depths, [3 * 0.6**d for d in depths]) == pytest.approx(
        0.6, rel=1e-12
    )


def test_vanishing_gradients_quick_run(runs):
    _, m = runs["vanishing_gradients"]
    layer1 = {k: np.array(v) for k, v in m["layer1_gradient"].items()}
    factors = m["per_layer_factor"]
    assert factors["plain"] == pytest.approx(
        vanishing.per_layer_factor(m["depths"], np.median(layer1["plain"], axis=1)), rel=1e-12
    )
    per_seed = {
        v: [vanishing.per_layer_factor(m["depths"], c) for c in layer1[v].T] for v in layer1
    }
    assert m["per_layer_factor_per_seed"] == pytest.approx(per_seed, rel=1e-12)
    claims = m["claims"]
    assert_seed_finding(claims["plain_vanishes_with_depth"], per_seed["plain"])
    assert_seed_finding(
        claims["skips_slow_the_decay"], np.subtract(per_seed["skips"], per_seed["plain"])
    )
    ratio = np.log10(np.array(m["time_ratio_plain"])).mean(axis=0)
    assert_seed_finding(claims["vanishes_through_time"], ratio)
    # One layer: the three variants are the same stack and loss.
    np.testing.assert_allclose(layer1["skips"][0], layer1["plain"][0], rtol=1e-12)
    np.testing.assert_allclose(layer1["auxiliary"][0], layer1["plain"][0], rtol=1e-12)
    assert _holds(m, "auxiliary_keeps_gradient") == bool(
        np.all(layer1["auxiliary"] > vanishing.AUX_FLOOR * layer1["auxiliary"][0])
    )
