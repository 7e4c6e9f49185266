"""``rnnode.LTC``: a stack of liquid time-constant layers called as ``ncps.torch.LTC`` is.

An ``ODERNN`` with ``cell="ltc"`` (the field of ``rnnode._ltc``) whose default solve is ncps's
fused semi-implicit step (``method="ltc_fused"``, ``ode_unfolds`` unfolds per sample interval),
with ncps's call: ``model(x, hx=None, timespans=None) -> (readout, hx)`` where the readout is the
top layer's output mapping (its first ``motor_size`` units, times ``output_w``, plus
``output_b``) and ``timespans`` the elapsed time of every sample (default 1). Every solver keyword
of ``ODERNN.forward`` still applies, so the same weights can be solved as the ODE they stand for
(``model(x, method="dopri5")``), and every analysis function takes the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from ._ltc import LTCField
from ._semi_implicit import FUSED_METHODS, check_unfolds
from ._settings import NOT_GIVEN
from ._stack import ODERNN
from ._validate import check_bool, check_finite

__all__ = ["LTC"]


class LTC(ODERNN):
    """Stacked (bidirectional) liquid time-constant layers with ncps's call.

    Arguments:
        input_size: features of x.
        hidden_size: units of each layer (ncps: ``wiring.units``).
        num_layers, bidirectional, skips, dropout: as ``ODERNN`` (layer l + 1 reads the whole
            potential v of layer l through its own input mapping).
        batch_first: inputs (batch, T, features); True by default, as ncps.
        return_sequences: return the readout at every sample (True, ncps's default) or at the
            last one only.
        input_mapping, output_mapping, motor_size, implicit_param_constraints, epsilon: the
            LTC field's (``rnnode.LTCField``); ncps's defaults. The output mapping belongs to
            the top layer (the others have none).
        ode_unfolds: fused steps per solver step (ncps's ``ode_unfolds``).
        method, step_size, rtol, atol, interpolation, coupling: the default solve, as
            ``ODERNN``; default ncps's: ``"ltc_fused"``, one solver step per sample interval,
            the input held on it, layers coupled at the sample times.

    Shapes: x (batch, T, input_size) (time first without ``batch_first``; (T, input_size)
    unbatched). ``hx`` and the returned state: (batch, hidden) as ncps when the model has one
    layer and one direction, otherwise ``ODERNN``'s (D * num_layers, batch, hidden); zeros when
    None. The readout: (batch, T, D * motor_size) (the last sample only, (batch, D *
    motor_size), without ``return_sequences``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        batch_first: bool = True,
        bidirectional: bool = False,
        return_sequences: bool = True,
        skips: Sequence[int] = (1,),
        dropout: float = 0.0,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        motor_size: int | None = None,
        implicit_param_constraints: bool = True,
        epsilon: float = 1e-8,
        ode_unfolds: int = 6,
        method: str = "ltc_fused",
        step_size: float | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        interpolation: str = "hold",
        coupling: str = "sampled",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            cell="ltc",
            batch_first=batch_first,
            bidirectional=bidirectional,
            skips=skips,
            dropout=dropout,
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
            cell_options=cast(
                Any,
                {
                    "input_mapping": input_mapping,
                    "output_mapping": output_mapping,
                    "motor_size": motor_size,
                    "implicit_param_constraints": implicit_param_constraints,
                    "epsilon": epsilon,
                },
            ),
        )
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.ode_unfolds = check_unfolds(ode_unfolds)
        for layer in range(num_layers - 1):  # only the top layer is read out
            for d in range(self.num_directions):
                field = self.ltc_field(layer, d)
                field.output_mapping, field.motor_size = "none", hidden_size
                field.output_w = None
                field.output_b = None

    @classmethod
    def from_fields(  # type: ignore[override]
        cls,
        fields: Sequence[LTCField] | Sequence[tuple[LTCField, LTCField]],
        *,
        batch_first: bool = True,
        return_sequences: bool = True,
        ode_unfolds: int = 6,
        skips: Sequence[int] = (1,),
        dropout: float = 0.0,
        method: str = "ltc_fused",
        step_size: float | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        interpolation: str = "hold",
        coupling: str = "sampled",
    ) -> LTC:
        """An ``LTC`` of the given LTC fields, one per layer (or one (forward, reverse) pair),
        used as they are: for example fields with wiring masks of one's own. The top layer's
        output mapping is the readout. Arguments as the constructor and ``ODERNN.from_fields``.

        Raises:
            TypeError: a field that is not an ``LTCField``; otherwise as ``ODERNN.from_fields``.
        """
        if isinstance(fields, Sequence):
            for i, entry in enumerate(fields):
                for field in entry if isinstance(entry, (tuple, list)) else (entry,):
                    if not isinstance(field, LTCField):
                        raise TypeError(
                            f"fields[{i}]: expected an rnnode.fields.LTCField, got "
                            f"{type(field).__name__}"
                        )
        model = cast(Any, super()).from_fields(
            fields,
            batch_first=batch_first,
            skips=skips,
            dropout=dropout,
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
        )
        model.return_sequences = check_bool("return_sequences", return_sequences)
        model.ode_unfolds = check_unfolds(ode_unfolds)
        return cast(LTC, model)

    def ltc_field(self, layer: int, direction: int = 0) -> LTCField:
        """The LTC field of a layer (0-based) and direction (``ODERNN.field``, typed)."""
        return cast(LTCField, self.field(layer, direction))

    @property
    def motor_size(self) -> int:
        """Features of the readout per direction (the top layer's ``motor_size``)."""
        return self.ltc_field(self.num_layers - 1).motor_size

    def readout(self, output: torch.Tensor) -> torch.Tensor:
        """The top layer's output mapping of ``ODERNN``'s output (..., D * hidden) ->
        (..., D * motor_size), each direction by its own field."""
        top = self.num_layers - 1
        parts = output.split(self.hidden_size, dim=-1)
        return torch.cat([self.ltc_field(top, d).readout(p) for d, p in enumerate(parts)], dim=-1)

    def forward(  # type: ignore[override]  # x a tensor (ncps's layout), timespans third
        self,
        x: torch.Tensor,
        hx: torch.Tensor | None = None,
        timespans: torch.Tensor | None = None,
        *,
        t: torch.Tensor | None = None,
        method: str = NOT_GIVEN,
        step_size: float | None = NOT_GIVEN,
        rtol: float = NOT_GIVEN,
        atol: float = NOT_GIVEN,
        interpolation: str = NOT_GIVEN,
        coupling: str = NOT_GIVEN,
        engine: str = NOT_GIVEN,
        adjoint: bool = False,
        options: dict | None = None,
        track_state_gradients: bool = False,
        return_gates: bool = False,
        detach_layers: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ncps's call: ``(readout, hx)`` after the samples of x.

        Arguments:
            x: as the class says.
            hx: the initial potentials (see the class for the layout).
            timespans: the elapsed time before each sample, (batch, T) (or (T, batch) time
                first; a trailing dimension of 1 allowed, as ncps's (batch, T, 1)), or (T,)
                shared by the batch; default 1 each. The sample times are their cumulative
                sums from t_0 = 0: per-sequence timespans are ``ODERNN``'s per-sequence times.
            t, method, step_size, rtol, atol, interpolation, coupling, engine, adjoint, options,
                track_state_gradients, return_gates, detach_layers: as ``ODERNN.solve`` (give
                ``t`` or ``timespans``, not both; each solver setting not given keeps the
                model's default, ``self.defaults``); with the fused method,
                ``options={"unfolds": ...}`` overrides ``ode_unfolds``.
        """
        if timespans is not None:
            if t is not None:
                raise ValueError("timespans: give either timespans or t, not both")
            t = self._times(x, timespans)
        if (self.defaults.method if method is NOT_GIVEN else method) in FUSED_METHODS:
            options = dict(options or {})
            options.setdefault("unfolds", self.ode_unfolds)
        single = self.num_layers * self.num_directions == 1
        ncps_layout = (
            single
            and isinstance(hx, torch.Tensor)
            and isinstance(x, torch.Tensor)
            and hx.dim() == x.dim() - 1
        )
        if ncps_layout:
            assert hx is not None
            hx = hx.unsqueeze(0)
        solution = self.solve(
            x,
            hx,
            t=t,
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
            engine=engine,
            adjoint=adjoint,
            options=options,
            track_state_gradients=track_state_gradients,
            return_gates=return_gates,
            detach_layers=detach_layers,
        )
        output = self.readout(solution.output)
        if not self.return_sequences:
            time_dim = 1 if (self.batch_first and output.dim() == 3) else 0
            output = output.select(time_dim, -1)
        h_n = solution.h_n
        assert isinstance(h_n, torch.Tensor)
        return output, (h_n.squeeze(0) if single else h_n)

    def _times(self, x: torch.Tensor, timespans: object) -> torch.Tensor:
        """Sample times from elapsed times: t_0 = 0, t_k = t_{k-1} + timespans_k."""
        if not isinstance(timespans, torch.Tensor):
            raise TypeError(
                f"timespans: expected a tensor of elapsed times, got {type(timespans).__name__}"
            )
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a tensor, got {type(x).__name__}")
        spans = timespans.to(self.ltc_field(0).cm.dtype)
        batched = x.dim() == 3
        if spans.dim() == (3 if batched else 2) and spans.shape[-1] == 1:
            spans = spans.squeeze(-1)
        time_dim = 1 if (batched and self.batch_first and spans.dim() == 2) else 0
        T = x.shape[1 if (batched and self.batch_first) else 0]
        if spans.dim() not in ((1, 2) if batched else (1,)) or spans.shape[time_dim] != T:
            layout = "(batch, T)" if self.batch_first else "(T, batch)"
            raise ValueError(
                f"timespans: expected the elapsed time of each of the T = {T} samples, (T,) "
                f"or {layout}"
                + (" (trailing 1 allowed)" if batched else "")
                + f", got shape {tuple(timespans.shape)}"
            )
        check_finite("timespans", spans)
        if not bool((spans > 0).all()):
            raise ValueError("timespans: expected positive elapsed times, got some <= 0")
        start = spans.narrow(time_dim, 0, 1).new_zeros(spans.narrow(time_dim, 0, 1).shape)
        return torch.cat([start, spans.cumsum(time_dim)], dim=time_dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ode_unfolds={self.ode_unfolds}"


def ltc_fields(model: ODERNN) -> list[LTCField]:
    """The LTC fields of ``model``, or a TypeError naming what it holds instead."""
    fields = list(model.layers)
    if not all(isinstance(f, LTCField) for f in fields):
        raise TypeError(f"model: expected LTC layers (cell='ltc'), got cell={model.cell!r}")
    return fields  # type: ignore[return-value]
