"""The bridge to ncps: ``ncps.torch.LTC`` <-> ``rnnode.LTC``, parameters copied 1:1.

ncps (Lechner & Hasani) integrates each sample of an LTC layer with ``ode_unfolds`` fused
semi-implicit Euler steps over its elapsed time; ``rnnode.LTC``'s default solve is that step
(``method="ltc_fused"``), so ``from_ncps(m)(x, hx, timespans)`` equals ``m(x, hx, timespans)`` to
rounding, for fully connected and NCP wirings alike (the wiring lives on as the sparsity masks and
the reversal potentials). ncps is an optional dependency: ``pip install 'rnnode[ncps]'``.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from ._extras import require
from ._liquid import LTC, ltc_fields
from ._ltc import LTCField

__all__ = ["from_ncps", "to_ncps"]

#: The tensors of an LTC cell, ncps's names (the masks are parameters there, buffers here).
_TENSORS = (
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
    "sparsity_mask",
    "sensory_sparsity_mask",
    "input_w",
    "input_b",
    "output_w",
    "output_b",
)


def _ncps(what: str) -> ModuleType:
    return require("ncps.torch", "ncps", "ncps", what)


def from_ncps(module: nn.Module) -> LTC:
    """The ``rnnode.LTC`` equivalent to an ``ncps.torch.LTC`` (same parameters, copied).

    Its defaults are ncps's solve (``method="ltc_fused"`` with the module's ``ode_unfolds``,
    one solver step per sample, the input held), its call ncps's (``model(x, hx, timespans)``,
    ``batch_first`` and ``return_sequences`` as the module's), so the outputs, final states and
    gradients equal ncps's to rounding; pass solver arguments (``method="dopri5"``) to solve the
    ODE the same weights stand for.

    Arguments:
        module: an ``ncps.torch.LTC`` with any wiring (``FullyConnected``, ``NCP``,
            ``AutoNCP``, ``Random``), input and output mappings, parameter constraints.

    Returns:
        ``rnnode.LTC`` on the module's dtype and device, in its training mode.

    Raises:
        ImportError: ncps is not installed (the message names the extra ``rnnode[ncps]``).
        NotImplementedError: ``mixed_memory=True`` (the LSTM memory cell beside the LTC), or a
            CfC module (closed-form continuous-time cells are not an ODE solve).
        TypeError: anything else.
    """
    ncps_torch = _ncps("from_ncps")
    for name in ("CfC", "WiredCfCCell", "CfCCell"):
        cls = getattr(ncps_torch, name, None)
        if cls is not None and isinstance(module, cls):
            raise NotImplementedError(
                f"module: ncps.torch.{name} (closed-form continuous-time, CfC) is not supported: "
                "it is a closed-form approximation, not an ODE that rnnode solves; only "
                "ncps.torch.LTC is"
            )
    if not isinstance(module, ncps_torch.LTC):
        raise TypeError(f"module: expected an ncps.torch.LTC, got {type(module).__name__}")
    if module.use_mixed:
        raise NotImplementedError(
            "module: mixed_memory=True is not supported (the LSTM memory cell that ncps runs "
            "beside the LTC is no part of the LTC's ODE); use mixed_memory=False"
        )
    cell = module.rnn_cell
    wiring = cell._wiring
    reference = cell.gleak
    model = LTC(
        int(module.input_size),
        int(wiring.units),
        batch_first=bool(module.batch_first),
        return_sequences=bool(module.return_sequences),
        input_mapping=cell._input_mapping,
        output_mapping=cell._output_mapping,
        motor_size=int(wiring.output_dim),
        implicit_param_constraints=bool(cell._implicit_param_constraints),
        epsilon=float(cell._epsilon),
        ode_unfolds=int(cell._ode_unfolds),
    ).to(dtype=reference.dtype, device=reference.device)
    _copy(cell, model.field(0))
    model.train(module.training)
    return model


def to_ncps(model: LTC) -> nn.Module:
    """The ``ncps.torch.LTC`` equivalent to a one-layer unidirectional ``rnnode.LTC`` whose
    default solve is ncps's (``method="ltc_fused"``, one step per sample, ``"hold"``).

    The wiring is rebuilt from the sparsity masks (a synapse's polarity from the sign of its
    reversal potential); every parameter is copied exactly.

    Raises:
        ImportError: ncps is not installed.
        TypeError: ``model`` is not an ``rnnode.LTC``.
        ValueError: a model ncps cannot express (several layers, bidirectional, skips, another
            default solve); the message names the option.
    """
    ncps_torch = _ncps("to_ncps")
    from ncps import wirings

    if not isinstance(model, LTC):
        raise TypeError(f"model: expected an rnnode.LTC, got {type(model).__name__}")
    (field,) = ltc_fields(model)[:1]
    checks = (
        ("num_layers", model.num_layers, 1),
        ("bidirectional", model.bidirectional, False),
        ("method", model.defaults.method, "ltc_fused"),
        ("step_size", model.defaults.step_size, None),
        ("interpolation", model.defaults.interpolation, "hold"),
    )
    for name, got, want in checks:
        if got != want:
            raise ValueError(f"{name}: ncps.torch.LTC needs {name}={want!r}, got {got!r}")
    assert isinstance(field, LTCField)
    polarity = torch.where(field.erev.detach() < 0, -1, 1) * field.sparsity_mask.round().int()
    sensory = (
        torch.where(field.sensory_erev.detach() < 0, -1, 1)
        * field.sensory_sparsity_mask.round().int()
    )
    wiring = wirings.Wiring(field.hidden_size)
    wiring.set_output_dim(field.motor_size)
    wiring.build(field.input_size)
    wiring.adjacency_matrix = polarity.cpu().numpy().astype("int32")
    wiring.sensory_adjacency_matrix = sensory.cpu().numpy().astype("int32")
    module = ncps_torch.LTC(
        field.input_size,
        wiring,
        return_sequences=model.return_sequences,
        batch_first=model.batch_first,
        input_mapping=field.input_mapping,
        output_mapping=field.output_mapping,
        ode_unfolds=model.ode_unfolds,
        epsilon=field.epsilon,
        implicit_param_constraints=field.implicit_param_constraints,
    ).to(dtype=field.cm.dtype, device=field.cm.device)
    _copy(field, module.rnn_cell)
    module.train(model.training)
    return module


@torch.no_grad()
def _copy(source: nn.Module, target: nn.Module) -> None:
    """Copy every LTC tensor by name (those present in both; the mappings must agree)."""
    for name in _TENSORS:
        a, b = getattr(source, name, None), getattr(target, name, None)
        if (a is None) != (b is None):
            raise ValueError(f"module: {name} exists on one side only")
        if a is not None and b is not None:
            b.copy_(a)
