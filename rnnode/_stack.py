"""ODERNN: a stack of recurrent layers as continuous-time vector fields, solved by torchdiffeq.

Layer ``l`` (1-based) is a vector field dh_l/dt = F_l(t, h_l, u_l) driven by its *sources*: the
layers ``l - s`` for every skip offset ``s`` (``skips=(1,)`` is the plain stack), where an offset
that reaches below layer 1 reads the input x (once, however many offsets reach it). The drive is
``u_l = W_ih [source_1; source_2; ...] + b_ih`` in the order of increasing offset (the wiring is
``rnnode._topology.Topology``).

Couplings between layers:

- ``"sampled"``: layers are solved one after another; layer l is driven by the interpolated outputs
  of its sources *at the sample times* (the discrete stack's structure).
- ``"continuous"``: all layers form one ODE in which layer l is driven by the states of its sources
  at every instant (the true continuous-time stack).

Why the defaults are the discrete RNN: with ``method="euler"``, one step per sample interval,
``interpolation="hold"``, ``coupling="sampled"`` and tau = 1, the step from t_{k-1} to t_k = t_{k-1}
+ 1 is ``h_k = h_{k-1} + 1 * (Phi(h_{k-1}, x_k) - h_{k-1}) = Phi(h_{k-1}, x_k)``: the held input on
``[t_{k-1}, t_k)`` is exactly x_k and Phi is the cell of torch.nn.RNN/GRU/LSTM, so each layer's
solution at the sample times is the discrete layer's output sequence, to rounding.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from . import _stack_solve
from ._field_protocol import Field, check_field
from ._fields import FieldList, VectorField, cell_of, check_nonlinearity, check_tau, make_field
from ._paths import InputPath
from ._settings import COUPLINGS, NOT_GIVEN, SolveSettings
from ._solution import Solution
from ._topology import Topology
from ._validate import check_bool, check_int, check_probability

__all__ = ["COUPLINGS", "ODERNN", "Solution"]

#: The default solve (the discrete RNN's), written once in ``SolveSettings``.
_DEFAULT = SolveSettings()


class ODERNN(nn.Module):
    """A stacked (bidirectional) RNN whose layers are continuous-time vector fields.

    Layer l follows dh_l/dt = F(t, h_l, W_ih x_l + b_ih) / tau_l for the chosen ``cell`` (see
    ``rnnode.CELLS``); calling the model integrates the stack with a torchdiffeq method from the
    state ``hx`` at t_0 through the sample times t_1..t_T and returns torch's ``(output, h_n)``.
    With the default solve (explicit Euler, one step per unit sample interval, the input held
    over each interval, layers coupled at the sample times, tau = 1) the model *is*
    torch.nn.RNN / GRU / LSTM with the same weights (``rnnode.from_torch`` / ``to_torch``);
    every other solve asks what the same weights do as a continuous-time system.

    See ``ODERNN.__init__`` for the arguments, ``ODERNN.forward`` for the call and
    ``ODERNN.solve`` for the full ``Solution``.

    Notes:
        Times: ``t`` has shape (T + 1,) = (t_0, t_1, ..., t_T): the state starts from ``hx`` at
        t_0 and sample x_k is observed at t_k. Default: t_k = k. Times must increase strictly.
        Each sequence may have its own times: ``t`` of shape (T + 1, batch), or (batch, T + 1)
        with ``batch_first``. They are solved in one batched solve in a shared clock s in
        [0, T] whose integer knots map to each sequence's times, dh/ds = F(t_b(s), h,
        x_b(t_b(s))) dt_b/ds with t_b piecewise linear, so every sequence's sample times are grid
        points and every solver (and the adjoint) applies unchanged. A fixed-step method then
        takes, on every interval, the step count of the batch's widest interval there.

        Interpolations (``rnnode.INTERPOLATIONS``): ``"hold"`` (x_k on [t_{k-1}, t_k): the bridge
        to torch), ``"linear"``, ``"cubic"``, and ``"causal"`` (x_k on [t_k, t_{k+1}), 0 before
        t_1: the last observation carried forward, for data observed at irregular times; with
        sampled coupling every layer reads its sources causally, a sample's delay per layer).

        The reverse direction of a bidirectional layer integrates the same field on the reflected
        path s -> x(t_0 + t_T - s); its output at sample k is its state at t_{k-1} (it has then
        consumed x_T, ..., x_k, as torch's reverse direction has).

    Warnings:
        ``coupling="continuous"`` with ``bidirectional=True`` needs ``num_layers=1``: a deeper
        bidirectional stack coupled at every instant is a boundary-value problem, not an
        initial-value problem.

    Example:
        >>> model = ODERNN(3, 8, num_layers=2, cell="gru")
        >>> out, h_n = model(torch.randn(20, 4, 3))                 # torch.nn.GRU's numbers
        >>> out, h_n = model(torch.randn(20, 4, 3), method="dopri5")  # the continuous system
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "rnn",
        nonlinearity: str | None = None,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        tau: float | Sequence[float | torch.Tensor] | torch.Tensor = 1.0,
        *,
        skips: Sequence[int] = (1,),
        learn_tau: bool = False,
        dropout: float = 0.0,
        method: str = _DEFAULT.method,
        step_size: float | None = _DEFAULT.step_size,
        rtol: float = _DEFAULT.rtol,
        atol: float = _DEFAULT.atol,
        interpolation: str = _DEFAULT.interpolation,
        coupling: str = _DEFAULT.coupling,
        engine: str = NOT_GIVEN,
        cell_options: Mapping[str, float] | None = None,
    ) -> None:
        """Build the stack; the weights are initialised as torch.nn's.

        Arguments:
            input_size: features of x.
            hidden_size: features of each layer's hidden state h.
            num_layers: number of stacked layers.
            cell: ``"rnn"`` (Elman), ``"gru"``, ``"lstm"``, ``"linear"``, ``"antisymmetric"``,
                ``"cornn"`` (coupled oscillators; state and ``hx`` ``(y, z)`` like the LSTM's) or
                ``"ltc"`` (liquid time-constant, ``rnnode.fields.LTCField``; see ``rnnode.LTC``).
            nonlinearity: ``"tanh"`` (default) or ``"relu"``; ``cell="rnn"`` only (given with
                another cell, it is refused).
            bias: whether the layers have ``bias_ih`` and ``bias_hh``.
            batch_first: inputs and outputs are (batch, T, features) instead of
                (T, batch, features).
            bidirectional: add a reverse direction per layer that integrates the time-reversed
                input.
            tau: time constants: one positive finite number for every layer, a list of one per
                layer (each a number or a (hidden_size,) tensor), a (hidden_size,) tensor of
                one per unit for every layer, or a (num_layers, hidden_size) tensor.
            skips: offsets of the layers feeding each layer (``(1,)``: the plain stack;
                ``(1, 2)``: layers l-1 and l-2).
            learn_tau: make the time constants trainable (kept positive as ``exp(log_tau)``).
            dropout: dropout probability in [0, 1) on the outputs of every layer but the last,
                in training (as torch.nn.RNN; sampled coupling only).
            method, step_size, rtol, atol, interpolation, coupling, engine: the default solve,
                held as ``self.defaults`` (a frozen ``rnnode.SolveSettings``); every call may
                override each of them. The defaults are the exact bridge to torch.nn.RNN:
                ``"euler"``, one step per sample interval (``step_size=None``), ``"hold"``,
                ``"sampled"``.
            cell_options: the cell's own coefficients, for every layer (``{"gamma": ...}`` for
                ``"antisymmetric"``; ``{"gamma": ..., "epsilon": ...}`` for ``"cornn"``;
                ``LTCField``'s keywords for ``"ltc"``).

        Raises:
            TypeError: an argument of the wrong type (the message names it).
            ValueError: an argument of the right type but an invalid value.
        """
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
        check_int("num_layers", num_layers, minimum=1)
        nonlinearity = check_nonlinearity(cell, nonlinearity)
        for name, flag in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
            ("learn_tau", learn_tau),
        ):
            check_bool(name, flag)
        skips = _check_skips(skips)
        dropout = check_probability("dropout", dropout)
        taus = _check_taus(tau, num_layers, hidden_size)
        defaults = _default_solve(method, step_size, rtol, atol, interpolation, coupling, engine)
        num_directions = 2 if bidirectional else 1
        topology = Topology(input_size, hidden_size, num_layers, num_directions, skips)
        layers = []
        for layer in range(num_layers):
            for _ in range(num_directions):
                layers.append(
                    make_field(
                        cell,
                        topology.drive_size(layer),
                        hidden_size,
                        nonlinearity=nonlinearity,
                        bias=bias,
                        tau=taus[layer],
                        learn_tau=learn_tau,
                        **dict(cell_options or {}),
                    )
                )
        self._setup(topology, layers, cell, nonlinearity, bias, batch_first, dropout, defaults)

    def _setup(
        self,
        topology: Topology,
        layers: Sequence[nn.Module],
        cell: str | None,
        nonlinearity: str | None,
        bias: bool,
        batch_first: bool,
        dropout: float,
        defaults: SolveSettings,
    ) -> None:
        """Set the model's attributes from checked parts (the constructor and ``from_fields``)."""
        self.input_size = topology.input_size
        self.hidden_size = topology.hidden_size
        self.num_layers = topology.num_layers
        #: The cell's name in ``rnnode.CELLS``; None for a stack of other fields (``from_fields``).
        self.cell = cell
        #: ``"tanh"`` or ``"relu"`` for ``cell="rnn"``; None for the other cells.
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = topology.num_directions == 2
        self.num_directions = topology.num_directions
        self.skips = topology.skips
        self.dropout = dropout
        #: The default solve; each keyword of a call overrides one of its settings.
        self.defaults = defaults
        #: The stack's wiring: sources, weight columns, groups and output layout.
        self.topology = topology
        #: Vector fields, index ``layer * num_directions + direction`` (torch's order of hx).
        self.layers = FieldList(layers)

    @classmethod
    def from_fields(
        cls,
        fields: Sequence[Field] | Sequence[tuple[Field, Field]],
        *,
        batch_first: bool = False,
        skips: Sequence[int] = (1,),
        dropout: float = 0.0,
        method: str = _DEFAULT.method,
        step_size: float | None = _DEFAULT.step_size,
        rtol: float = _DEFAULT.rtol,
        atol: float = _DEFAULT.atol,
        interpolation: str = _DEFAULT.interpolation,
        coupling: str = _DEFAULT.coupling,
        engine: str = NOT_GIVEN,
    ) -> ODERNN:
        """A stack of the given fields, one per layer (bottom first), used as they are (shared,
        not copied).

        Layer l integrates dh_l/dt = F_l(t, h_l, W_ih [sources of l] + b_ih) with F_l the
        field's own rate (``rnnode.fields.Field``): any ``VectorField`` (a built-in cell, one
        with a per-unit tau, a subclass) or a module of one's own writing. Stacks whose fields
        are ``rnnode.fields.FusibleField`` of one ``fusion_key`` run continuously coupled as one
        block, like the built-in cells.

        Arguments:
            fields: one field per layer (a list, tuple or ``nn.ModuleList``); for a
                bidirectional stack one pair ``(forward, reverse)`` per layer. Every field has
                the same ``hidden_size`` and ``state_parts``; layer l's ``input_size`` is the
                features of its sources (the input's for layer 0; ``D * hidden_size`` per source
                layer).
            batch_first, skips, dropout: as the constructor.
            method, step_size, rtol, atol, interpolation, coupling, engine: the default solve,
                as the constructor (the bridge's by default).

        Returns:
            An ``ODERNN`` whose ``layers`` are the given fields; ``cell`` is the cell's name
            where every field is exactly one built-in cell's class, else None.

        Raises:
            TypeError: ``fields`` not a sequence of fields (or of pairs of them), a field that
                lacks a member of ``rnnode.fields.Field``.
            ValueError: no fields, pairs mixed with single fields, sizes that do not chain,
                fields of different dtypes or devices, or a field that fails
                ``rnnode.fields.check_field``.
        """
        if isinstance(fields, nn.ModuleList):
            fields = list(fields)
        if isinstance(fields, nn.Module) or not isinstance(fields, Sequence) or not fields:
            raise TypeError(
                "fields: expected a non-empty sequence of fields (one per layer) or of "
                f"(forward, reverse) pairs, got {type(fields).__name__}"
            )
        paired = [isinstance(f, (tuple, list)) for f in fields]
        if any(paired) and not all(paired):
            raise ValueError(
                "fields: expected one field per layer or one (forward, reverse) pair per layer, "
                "got a mix of both"
            )
        bidirectional = all(paired)
        flat: list[Any] = []  # each checked to be a Field (an nn.Module) below
        for layer, entry in enumerate(cast(Sequence[Any], fields)):
            if bidirectional and len(entry) != 2:
                raise ValueError(
                    f"fields[{layer}]: expected a (forward, reverse) pair, got {len(entry)} fields"
                )
            for d, field in enumerate(entry if bidirectional else (entry,)):
                name = f"fields[{layer}][{d}]" if bidirectional else f"fields[{layer}]"
                check_field(field, name)
                flat.append(field)
        first = flat[0]
        skips = _check_skips(skips)
        dropout = check_probability("dropout", dropout)
        check_bool("batch_first", batch_first)
        num_directions = 2 if bidirectional else 1
        topology = Topology(first.input_size, first.hidden_size, len(fields), num_directions, skips)
        weight = first.weight_ih
        for i, field in enumerate(flat):
            layer, d = divmod(i, num_directions)
            name = f"fields[{layer}][{d}]" if bidirectional else f"fields[{layer}]"
            for attribute in ("hidden_size", "state_parts"):
                if getattr(field, attribute) != getattr(first, attribute):
                    raise ValueError(
                        f"{name}: expected {attribute}={getattr(first, attribute)} as "
                        f"fields[0], got {getattr(field, attribute)}"
                    )
            if field.input_size != topology.drive_size(layer):
                raise ValueError(
                    f"{name}: expected input_size={topology.drive_size(layer)} (the features "
                    f"of its sources {list(topology.sources(layer))}, -1 the input), got "
                    f"{field.input_size}"
                )
            if (field.weight_ih.dtype, field.weight_ih.device) != (weight.dtype, weight.device):
                raise ValueError(
                    f"{name}: expected dtype {weight.dtype} on {weight.device} as fields[0], "
                    f"got {field.weight_ih.dtype} on {field.weight_ih.device}"
                )
        defaults = _default_solve(method, step_size, rtol, atol, interpolation, coupling, engine)
        cells = {cell_of(f) for f in flat}
        nonlinearities = {getattr(f, "nonlinearity", None) for f in flat}
        cell = cells.pop() if len(cells) == 1 and len(nonlinearities) == 1 else None
        biases = {f.bias_ih is not None for f in flat}
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._setup(
            topology,
            flat,
            cell,
            nonlinearities.pop() if cell == "rnn" else None,
            biases == {True},
            batch_first,
            dropout,
            defaults,
        )
        return model

    # -- structure ---------------------------------------------------------------------------

    def sources(self, layer: int) -> list[int]:
        """0-based indices of the layers feeding ``layer`` (-1: the input), by increasing offset."""
        return list(self.topology.sources(layer))

    def field(self, layer: int, direction: int = 0) -> VectorField:
        """The vector field of a layer (0-based) and direction (0 forward, 1 reverse)."""
        return self.layers[layer * self.num_directions + direction]

    @property
    def state_parts(self) -> int:
        """Parts of a layer's state (2 for the LSTM's (h, c) and coRNN's (y, z), else 1)."""
        return self.layers[0].state_parts

    # -- call ---------------------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor | InputPath,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
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
        detach_layers: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, ...]]:
        """Integrate the stack over the sample times: torch.nn.RNN's call.

        Arguments:
            x: (T, batch, input_size), or (batch, T, input_size) with ``batch_first``, or
                (T, input_size) unbatched; the model's dtype. Or an ``rnnode.InputPath`` x(t)
                (see ``solve``).
            hx: initial states at t_0, (D * num_layers, batch, hidden) (unbatched: without
                batch); for the LSTM and coRNN a pair ``(h_0, c_0)`` / ``(y_0, z_0)``. Zeros
                when None.
            t, method, step_size, rtol, atol, interpolation, coupling, engine, adjoint, options,
                detach_layers: as ``solve`` (each solver setting not given keeps the model's
                default, ``self.defaults``).

        Returns:
            ``(output, h_n)``: output (T, batch, D * hidden) (batch first with
            ``batch_first``), the top layer's hidden state at t_1..t_T; h_n
            (D * num_layers, batch, hidden), the final states (LSTM: ``(h_n, c_n)``).
        """
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
            detach_layers=detach_layers,
        )
        return solution.output, solution.h_n

    def solve(
        self,
        x: torch.Tensor | InputPath,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
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
    ) -> Solution:
        """Integrate the stack over the sample times and return everything it produced.

        Arguments:
            x, hx: as ``forward``. ``x`` may be an ``rnnode.InputPath`` (``HoldPath``,
                ``LinearPath``, ``CubicPath`` or a subclass) whose ``evaluate(t)`` is
                (batch, input_size), or (input_size,) unbatched: the layers reading the input
                read x(t) itself (its polynomial pieces projected through ``W_ih``, exactly),
                its knots ``x.times`` (T + 1,) are the sample times t_0..t_T (so ``t`` is not
                given), and ``interpolation`` applies to the layers' outputs only. A path needs
                every layer that reads the input to read no other sampled output
                (``skips=(1,)``, or ``coupling="continuous"``); a bidirectional stack reads it
                reversed by ``x.reflect()``.
            t: (T + 1,) strictly increasing times t_0..t_T (default 0, 1, ..., T), or each
                sequence's own, (T + 1, batch) or (batch, T + 1) with ``batch_first`` (see the
                class notes); cast to the model's dtype before they are checked.
            method: the solver, one of ``rnnode.METHODS`` (``"euler"``, ``"rk4"``,
                ``"dopri5"``, ...).
            step_size: the fixed step (fixed-step methods); None: one step per sample interval.
                Switching to an adaptive method drops the default step size (see
                ``rnnode.SolveSettings``).
            rtol, atol: the adaptive methods' relative and absolute tolerances.
            interpolation: how samples become a path x(t), one of ``rnnode.INTERPOLATIONS``.
            coupling: ``"sampled"`` (layers read their sources at the sample times) or
                ``"continuous"`` (at every instant), see ``rnnode.COUPLINGS``.
            engine: who steps the solve, ``"rnnode"`` or ``"torchdiffeq"``
                (``rnnode.SolveSettings.engine``; passed on only when given).
            adjoint: backpropagate with torchdiffeq's adjoint, one sample interval at a time.
            options: passed to torchdiffeq unchanged (for example ``{"solver": "LSODA"}`` with
                ``method="scipy_solver"``).
            track_state_gradients: (fixed-step methods) let ``Solution.state_gradients(loss)``
                return dLoss/dstate at every sample time.
            return_gates: (cells with ``gate_values``: the LSTM) fill ``Solution.gates``.
            detach_layers: stop gradients where a layer reads other layers (sampled coupling):
                each layer's parameters then get gradients only from losses on its own states.

        Each of ``method``, ``step_size``, ``rtol``, ``atol``, ``interpolation``, ``coupling``
        and ``engine`` overrides the model's default solve (``self.defaults``) on its own; a
        keyword not given keeps the default.

        Returns:
            A ``Solution``.
        """
        given = dict(
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
            **({} if engine is NOT_GIVEN else {"engine": engine}),  # see _default_solve
        )
        plan = _stack_solve.make_plan(
            self,
            x,
            hx,
            t,
            given,
            adjoint=adjoint,
            options=options,
            track_state_gradients=track_state_gradients,
            return_gates=return_gates,
            detach_layers=detach_layers,
        )
        return _stack_solve.package(self, plan, _stack_solve.solve_groups(self, plan))

    def joint_field(
        self, state: torch.Tensor, x: torch.Tensor, t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The vector field of the continuously coupled stack at a constant input.

        d state_l/dt = F_l(t, state_l, W_ih [sources of l] + b_ih), where the sources are the
        hidden parts of the states of layers l - s and, for offsets reaching below layer 1, x.

        Arguments:
            state: (..., num_layers, state_size) the stacked states.
            x: (..., input_size) the input, broadcast against the leading dimensions of state.
            t: the time (the classic cells are autonomous; default 0).

        Returns:
            (..., num_layers, state_size): d state/dt. Forward direction only (a bidirectional
            stack has no joint initial-value field).
        """
        if self.bidirectional:
            raise ValueError(
                "model: joint_field is defined for unidirectional stacks; got bidirectional=True"
            )
        if state.shape[-2:] != (self.num_layers, self.layers[0].state_size):
            raise ValueError(
                f"state: expected shape (..., num_layers, state_size) = "
                f"(..., {self.num_layers}, {self.layers[0].state_size}), got {tuple(state.shape)}"
            )
        t = state.new_zeros(()) if t is None else t
        batch_shape = state.shape[:-2]
        rates = []
        for layer in range(self.num_layers):
            field = self.field(layer)
            sources = self.topology.drive_inputs(
                layer, x, lambda j: self.field(j).output(state[..., j, :]), batch_shape
            )
            rates.append(field(t, state[..., layer, :], field.project(sources)))
        return torch.stack(rates, dim=-2)

    def to_torch(self) -> nn.RNNBase:
        """The equivalent torch.nn.RNN, GRU or LSTM (see ``rnnode.to_torch``)."""
        from ._bridge import to_torch

        return to_torch(self)

    # -- checks and packaging -------------------------------------------------------------------

    def extra_repr(self) -> str:
        s = (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"cell={self.cell!r}"
        )
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.skips != (1,):
            s += f", skips={self.skips}"
        return s


def _default_solve(
    method: str,
    step_size: float | None,
    rtol: float,
    atol: float,
    interpolation: str,
    coupling: str,
    engine: object,
) -> SolveSettings:
    """The model's default solve. ``engine`` is passed on only when given: ``SolveSettings``
    gains it with the torchdiffeq engine (issue 21 item 1); until then giving it is refused
    there, naming it."""
    given = {} if engine is NOT_GIVEN else {"engine": engine}
    return SolveSettings(
        method=method,
        step_size=step_size,
        rtol=rtol,
        atol=atol,
        interpolation=interpolation,
        coupling=coupling,
        **given,  # type: ignore[arg-type]
    )


def _check_skips(skips: object) -> tuple[int, ...]:
    """Distinct positive integer offsets, sorted."""
    what = "distinct positive integer offsets (a tuple such as (1,) or (1, 2))"
    if isinstance(skips, (str, bytes)) or not isinstance(skips, Iterable):
        raise TypeError(f"skips: expected {what}, got {skips!r}")
    offsets = tuple(skips)
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in offsets):
        raise TypeError(f"skips: expected {what}, got {offsets!r}")
    if not offsets or any(s < 1 for s in offsets) or len(set(offsets)) != len(offsets):
        raise ValueError(f"skips: expected {what}, got {offsets!r}")
    return tuple(sorted(int(s) for s in offsets))


def _check_taus(tau: object, num_layers: int, hidden_size: int) -> list[float | torch.Tensor]:
    """One time constant per layer, each a positive finite number or a (hidden,) tensor (per
    unit), from one of them, a list of one per layer, or a (num_layers, hidden) tensor."""
    if isinstance(tau, numbers.Real) and not isinstance(tau, bool):
        return [check_tau("tau", tau, hidden_size)] * num_layers
    if isinstance(tau, torch.Tensor) and tau.dim() == 2:
        if tau.shape != (num_layers, hidden_size):
            raise ValueError(
                f"tau: expected a (hidden,) = ({hidden_size},) or (num_layers, hidden) = "
                f"({num_layers}, {hidden_size}) tensor, got shape {tuple(tau.shape)}"
            )
        return [check_tau(f"tau[{i}]", row, hidden_size) for i, row in enumerate(tau)]
    if isinstance(tau, torch.Tensor) and tau.dim() == 1:
        return [check_tau("tau", tau, hidden_size)] * num_layers
    if isinstance(tau, (list, tuple)):
        if len(tau) != num_layers:
            raise ValueError(
                f"tau: expected one value or {num_layers} (one per layer), got {len(tau)}"
            )
        return [check_tau(f"tau[{i}]", value, hidden_size) for i, value in enumerate(tau)]
    hint = " (pass float(tau) for a 0-d tensor)" if isinstance(tau, torch.Tensor) else ""
    got = f"a tensor of shape {tuple(tau.shape)}" if isinstance(tau, torch.Tensor) else repr(tau)
    raise TypeError(
        f"tau: expected a positive finite number, a list of {num_layers} (one per layer) or a "
        f"({hidden_size},) tensor (one per unit), got {got}{hint}"
    )
