"""rnnode.from_ncps / to_ncps against ncps itself: outputs, final states and gradients."""

from __future__ import annotations

import sys

import pytest
import torch

import rnnode

ncps_torch = pytest.importorskip(
    "ncps.torch", reason="needs ncps: the extra rnnode[ncps], part of rnnode[dev]"
)
from ncps import wirings  # noqa: E402

_NAMES = (
    "gleak",
    "vleak",
    "cm",
    "sigma",
    "mu",
    "w",
    "erev",
    "sensory_sigma",
    "sensory_mu",
    "sensory_w",
    "sensory_erev",
    "input_w",
    "input_b",
    "output_w",
    "output_b",
)

CONFIGS = [
    dict(units=5),
    dict(units="auto", batch_first=False),
    dict(units="ncp", return_sequences=False),
    dict(units=4, input_mapping="linear", output_mapping="none", ode_unfolds=3),
    dict(units="auto", input_mapping="none", output_mapping="linear", mixed_memory=False),
    dict(units=6, implicit_param_constraints=False, batch_first=False, return_sequences=False),
]


def _wiring(units):
    if units == "auto":
        return wirings.AutoNCP(10, 3, seed=3)
    if units == "ncp":
        return wirings.NCP(3, 3, 2, 2, 2, 2, 2, seed=5)
    return units


def _pair(config, dtype, seed=0):
    torch.manual_seed(seed)
    config = dict(config)
    units = _wiring(config.pop("units"))
    module = ncps_torch.LTC(3, units, **config).to(dtype)
    with torch.no_grad():  # mappings away from the identity, so that they are tested
        for name in ("input_w", "input_b", "output_w", "output_b"):
            p = getattr(module.rnn_cell, name, None)
            if p is not None:
                p.add_(0.3 * torch.randn_like(p))
    return module, rnnode.from_ncps(module)


def _inputs(module, dtype, batch=3, T=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, T, 3) if module.batch_first else (T, batch, 3)
    x = torch.randn(shape, generator=g, dtype=dtype).requires_grad_(True)
    hx = (0.3 * torch.randn(batch, module.state_size, generator=g, dtype=dtype)).requires_grad_()
    return x, hx


def _loss(out, h, seed=2):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(out.shape, generator=g, dtype=out.dtype)
    b = torch.randn(h.shape, generator=g, dtype=h.dtype)
    return (out * a).sum() + (h * b).sum()


def _grads(loss, params, x, hx):
    names = [n for n in _NAMES if getattr(params, n, None) is not None]
    tensors = [getattr(params, n) for n in names] + [x, hx]
    return dict(zip([*names, "x", "hx"], torch.autograd.grad(loss, tensors), strict=True))


def _compare(module, model, x, hx, tol, **call):
    out_ref, h_ref = module(x, hx, **call)
    out, h = model(x, hx, **call)
    assert out.shape == out_ref.shape and h.shape == h_ref.shape
    torch.testing.assert_close(out, out_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(h, h_ref, rtol=tol, atol=tol)
    ref = _grads(_loss(out_ref, h_ref), module.rnn_cell, x, hx)
    got = _grads(_loss(out, h), model.field(0), x, hx)
    assert set(got) == set(ref)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("config", CONFIGS)
def test_from_ncps_reproduces_ncps(config, dtype, tol):
    module, model = _pair(config, dtype)
    assert model.defaults.method == "ltc_fused"
    x, hx = _inputs(module, dtype)
    _compare(module, model, x, hx, tol)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("config", CONFIGS[:3])
def test_given_timespans_reproduce_ncps(config, dtype, tol):
    """ncps broadcasts timespans only with batch 1 (timespans[:, t].squeeze() is (batch,))."""
    module, model = _pair(config, dtype)
    x, hx = _inputs(module, dtype, batch=1)
    g = torch.Generator().manual_seed(4)
    spans = 0.2 + 1.5 * torch.rand(1, x.shape[1 if module.batch_first else 0], generator=g)
    spans = spans.to(dtype) if module.batch_first else spans.to(dtype).T
    _compare(module, model, x, hx, tol, timespans=spans)


def test_unbatched_input_and_default_state_reproduce_ncps():
    # ncps's default state is zeros of torch's default dtype: float64 here.
    module, model = _pair(dict(units="auto"), torch.get_default_dtype())
    x = torch.randn(9, 3)
    out_ref, h_ref = module(x)
    out, h = model(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    assert out.shape == (9, 3) and h.shape == (10,)


def test_per_sequence_timespans_are_ncps_one_sequence_at_a_time():
    module, model = _pair(dict(units="auto"), torch.float64)
    x, hx = _inputs(module, torch.float64, batch=4, T=6)
    spans = 0.1 + 2 * torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator())
    out, h = model(x, hx, timespans=spans)
    for b in range(4):
        out_b, h_b = module(x[b : b + 1], hx[b : b + 1], timespans=spans[b : b + 1])
        torch.testing.assert_close(out[b : b + 1], out_b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(h[b : b + 1], h_b, rtol=1e-12, atol=1e-12)
    # ...and the gradient of a loss on every sequence is the sum of ncps's per sequence.
    (grad,) = torch.autograd.grad(_loss(out, h), model.field(0).w)
    total = sum(
        torch.autograd.grad(_per_sequence_loss(module, x, hx, spans, b, out, h), module.rnn_cell.w)[
            0
        ]
        for b in range(4)
    )
    torch.testing.assert_close(grad, total, rtol=1e-12, atol=1e-12)


def _per_sequence_loss(module, x, hx, spans, b, out, h):
    """Sequence b's share of ``_loss(out, h)``, computed by ncps on that sequence alone."""
    g = torch.Generator().manual_seed(2)
    a = torch.randn(out.shape, generator=g, dtype=out.dtype)
    c = torch.randn(h.shape, generator=g, dtype=h.dtype)
    out_b, h_b = module(x[b : b + 1], hx[b : b + 1], timespans=spans[b : b + 1])
    return (out_b * a[b : b + 1]).sum() + (h_b * c[b : b + 1]).sum()


def test_unfolds_option_overrides_ode_unfolds():
    module, model = _pair(dict(units=4, ode_unfolds=3), torch.float64)
    x, hx = _inputs(module, torch.float64)
    torch.manual_seed(0)
    other = ncps_torch.LTC(3, 4, ode_unfolds=11).double()
    other.load_state_dict(module.state_dict())
    torch.testing.assert_close(
        model(x, hx, options={"unfolds": 11})[0], other(x, hx)[0], rtol=1e-12, atol=1e-12
    )
    assert not torch.allclose(model(x, hx)[0], other(x, hx)[0])


@pytest.mark.parametrize("config", [CONFIGS[1], CONFIGS[3], CONFIGS[5]])
def test_to_ncps_goes_back_exactly(config):
    module, model = _pair(config, torch.float64)
    back = rnnode.to_ncps(model)
    ref, mine = module.state_dict(), back.state_dict()
    assert set(ref) == set(mine)
    for name in ref:
        assert torch.equal(ref[name], mine[name]), name
    assert back.batch_first == module.batch_first
    assert back.return_sequences == module.return_sequences
    x, hx = _inputs(module, torch.float64)
    assert torch.equal(back(x, hx)[0], module(x, hx)[0])
    # A model made in rnnode goes to ncps and back with every tensor unchanged.
    torch.manual_seed(9)
    native = rnnode.LTC(2, 5, motor_size=2).double()
    again = rnnode.from_ncps(rnnode.to_ncps(native))
    for (k, a), (k2, b) in zip(
        native.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b), k


def test_unsupported_configurations_name_the_option():
    with pytest.raises(NotImplementedError, match="mixed_memory"):
        rnnode.from_ncps(ncps_torch.LTC(3, 4, mixed_memory=True))
    with pytest.raises(NotImplementedError, match="CfC"):
        rnnode.from_ncps(ncps_torch.CfC(3, 4))
    with pytest.raises(TypeError, match="ncps.torch.LTC"):
        rnnode.from_ncps(torch.nn.GRU(3, 4))
    with pytest.raises(ValueError, match="num_layers"):
        rnnode.to_ncps(rnnode.LTC(3, 4, num_layers=2))
    with pytest.raises(ValueError, match="bidirectional"):
        rnnode.to_ncps(rnnode.LTC(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="method"):
        rnnode.to_ncps(rnnode.LTC(3, 4, method="dopri5"))


def test_without_ncps_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ncps.torch", None)  # import ncps.torch then fails
    with pytest.raises(ImportError, match=r"rnnode\[ncps\]"):
        rnnode.from_ncps(torch.nn.GRU(3, 4))
    with pytest.raises(ImportError, match=r"rnnode\[ncps\]"):
        rnnode.to_ncps(rnnode.LTC(3, 4))


def test_fused_method_needs_an_ltc_and_valid_unfolds():
    x = torch.randn(5, 2, 3)
    with pytest.raises(ValueError, match="ltc_fused"):
        rnnode.ODERNN(3, 4, cell="gru")(x, method="ltc_fused")
    model = rnnode.ODERNN(3, 4, cell="ltc")
    with pytest.raises(ValueError, match="unfolds"):
        model(x, method="ltc_fused", options={"unfolds": 0})
    with pytest.raises(ValueError, match="unfolds"):
        model(x, method="rk4", options={"unfolds": 2})
    with pytest.raises(ValueError, match="timespans"):
        rnnode.LTC(3, 4)(x, timespans=-torch.ones(5, 2))


def test_fused_step_in_continuous_coupling_and_with_substeps_is_the_hand_step():
    """Two layers coupled continuously, a step_size of half a sample: every unfold is
    v <- (cm/dt v + N) / (cm/dt + D + eps) with both layers' conductances at the old states."""
    torch.manual_seed(2)
    model = rnnode.LTC(2, 3, num_layers=2, batch_first=False, ode_unfolds=2).double()
    x = torch.randn(4, 1, 2, dtype=torch.float64)
    out, h = model(x, coupling="continuous", step_size=0.5)
    f1, f2 = model.field(0), model.field(1)
    v1 = torch.zeros(1, 3, dtype=torch.float64)
    v2 = torch.zeros(1, 3, dtype=torch.float64)
    dt = 0.25
    with torch.no_grad():
        for k in range(4):
            for _ in range(2 * 2):  # two solver steps of two unfolds each
                c1, n1, d1 = f1.conductances(None, v1, f1.project(x[k]))
                c2, n2, d2 = f2.conductances(None, v2, f2.project(v1))
                v1, v2 = (
                    (c1 / dt * v1 + n1) / (c1 / dt + d1 + 1e-8),
                    (c2 / dt * v2 + n2) / (c2 / dt + d2 + 1e-8),
                )
    torch.testing.assert_close(h[1], v2, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[-1], f2.readout(v2), rtol=0, atol=1e-12)


def test_fused_step_backpropagates_through_the_discrete_adjoint_and_state_probes():
    """adjoint=True (the steps recomputed in the backward pass) gives backprop's gradients."""
    module, model = _pair(dict(units="auto"), torch.float64)
    x, hx = _inputs(module, torch.float64)
    plain = torch.autograd.grad(_loss(*model(x, hx)), list(model.parameters()))
    again = torch.autograd.grad(_loss(*model(x, hx, adjoint=True)), list(model.parameters()))
    for a, b in zip(plain, again, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    sol = model.solve(x, hx.unsqueeze(0), track_state_gradients=True)
    loss = sol.states[0, 0, -1].sum()
    grads = sol.state_gradients(loss)
    torch.testing.assert_close(grads[0, 0, -1], torch.ones_like(grads[0, 0, -1]))


def test_ltc_fields_stack_through_from_fields():
    from rnnode.fields import LTCField, check_field

    torch.manual_seed(1)
    fields = [LTCField(3, 4).double(), LTCField(4, 4).double()]
    for f in fields:
        check_field(f)
    model = rnnode.ODERNN.from_fields(fields, method="ltc_fused")
    assert model.cell == "ltc"
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    reference = rnnode.ODERNN(3, 4, num_layers=2, cell="ltc").double()
    reference.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        model(x)[0], reference(x, method="ltc_fused", options={"unfolds": 6})[0], rtol=0, atol=0
    )


def test_bidirectional_stacked_ltc_reads_out_each_direction_of_the_top_layer():
    torch.manual_seed(3)
    model = rnnode.LTC(3, 5, num_layers=2, bidirectional=True, motor_size=2).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out, h_n = model(x)
    solution = model.solve(x)
    top = solution.output  # (batch, T, 2 * hidden): forward, then reverse
    expected = torch.cat(
        [model.field(1, 0).readout(top[..., :5]), model.field(1, 1).readout(top[..., 5:])], -1
    )
    assert out.shape == (2, 6, 4) and h_n.shape == (4, 2, 5)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # Only the top layer has an output mapping.
    assert model.field(0, 0).output_w is None and model.field(1, 1).output_w is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_from_ncps_on_cuda_reproduces_ncps():
    module, _ = _pair(dict(units="auto"), torch.float64)
    module = module.cuda()
    model = rnnode.from_ncps(module)
    x, hx = _inputs(module, torch.float64)
    x, hx = x.detach().cuda(), hx.detach().cuda()
    spans = torch.full((3, 7), 0.7, dtype=torch.float64, device="cuda")
    out_ref, h_ref = module(x, hx)
    out, h = model(x, hx)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    out, _ = model(x, hx, timespans=spans)
    out_ref, _ = module(x[:1], hx[:1], timespans=spans[:1])
    torch.testing.assert_close(out[:1], out_ref, rtol=1e-12, atol=1e-12)


def test_fused_step_differentiates_the_shared_sample_times():
    """d loss / d t against central differences: the fused step's dt = (t_k - t_{k-1}) / n."""
    module, model = _pair(dict(units=4), torch.float64)
    x, hx = _inputs(module, torch.float64, batch=2, T=4)
    x, hx = x.detach(), hx.detach().unsqueeze(0)
    t = torch.tensor([0.0, 0.7, 1.5, 2.1, 3.4], dtype=torch.float64, requires_grad=True)

    def loss(times):
        return model.solve(x, hx, t=times).output.pow(2).sum()

    (grad,) = torch.autograd.grad(loss(t), t)
    eps = 1e-6
    for k in range(5):
        e = torch.zeros(5, dtype=torch.float64)
        e[k] = eps
        with torch.no_grad():
            fd = (loss(t + e) - loss(t - e)) / (2 * eps)
        assert float(grad[k]) == pytest.approx(float(fd), abs=1e-8)


def test_ltc_from_fields_uses_the_given_wired_fields():
    module, model = _pair(dict(units="ncp", batch_first=False), torch.float64)
    again = rnnode.LTC.from_fields([model.field(0)], batch_first=False, ode_unfolds=6)
    assert isinstance(again, rnnode.LTC) and again.field(0) is model.field(0)
    x, hx = _inputs(module, torch.float64)
    torch.testing.assert_close(again(x, hx)[0], module(x, hx)[0], rtol=1e-12, atol=1e-12)
    from rnnode.fields import GRUField

    with pytest.raises(TypeError, match="LTCField"):
        rnnode.LTC.from_fields([GRUField(3, 4)])


@pytest.mark.parametrize("coupling", ["sampled", "continuous"])
def test_per_sequence_times_in_a_stack_are_each_sequence_alone(coupling):
    """Two LTC layers, fused step, each sequence's own timespans in one batched solve: every
    sequence as if solved alone on its shared times (the clock's dt_b/ds scales cm)."""
    torch.manual_seed(4)
    model = rnnode.LTC(2, 4, num_layers=2, coupling=coupling, ode_unfolds=3).double()
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    spans = 0.2 + 2 * torch.rand(3, 5, dtype=torch.float64)
    out, h = model(x, timespans=spans)
    for b in range(3):
        out_b, h_b = model(x[b : b + 1], timespans=spans[b])
        torch.testing.assert_close(out[b : b + 1], out_b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(h[:, b : b + 1], h_b, rtol=1e-12, atol=1e-12)
