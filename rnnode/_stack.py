"""ODERNN: a stack of recurrent layers as continuous-time vector fields, solved by torchdiffeq.

Layer ``l`` (1-based) is a vector field dh_l/dt = F_l(t, h_l, u_l) driven by its *sources*: the
layers ``l - s`` for every skip offset ``s`` (``skips=(1,)`` is the plain stack), where an offset
that reaches below layer 1 reads the input x (once, however many offsets reach it). The drive is
``u_l = W_ih [source_1; source_2; ...] + b_ih`` in the order of increasing offset.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from ._fields import CELLS, VectorField, make_field
from ._paths import INTERPOLATIONS, InputPath, make_path
from ._solve import METHODS, integrate
from ._validate import check_choice, check_positive, check_tensor, check_times

COUPLINGS = ("sampled", "continuous")
_INPUT = -1  # source index of the external input


@dataclass
class Solution:
    """Everything one solve of an ODERNN produced.

    Attributes:
        output: top layer's hidden states at the sample times, torch's layout:
            (T, batch, D * hidden) or (batch, T, D * hidden) when batch_first.
        h_n: final hidden states (D * num_layers, batch, hidden); for LSTM ``(h_n, c_n)``.
        times: (T + 1,) the start time t_0 and the sample times.
        states: (num_layers, D, T + 1, batch, state_size): every layer's full state at every time
            in ``times``, in forward time order for both directions (the reverse direction starts
            at t_T and ends at t_0).
        nfe: number of vector-field evaluations of the forward solve (all layers, directions).
        hidden_size: features of h, the first part of each state.
        gates: with ``solve(..., return_gates=True)`` (LSTM), a dict of the gates ``i, f, g, o``,
            each (num_layers, D, T, batch, hidden): entry k is the gate of the step into sample
            k + 1, ``gate_values(state at t_k, drive at t_k^+)`` (forward time order for both
            directions, as ``output``); otherwise None.

    For unbatched input the batch dimension is absent from all of them.
    """

    output: torch.Tensor
    h_n: torch.Tensor | tuple[torch.Tensor, ...]
    times: torch.Tensor
    nfe: int
    hidden_size: int
    gates: dict[str, torch.Tensor] | None = None
    # Per-layer (D, T + 1, batch, state) trajectories; ``states`` stacks them only when asked,
    # so a plain forward call copies no trajectory it does not return.
    _layer_states: list[torch.Tensor] = dataclass_field(default_factory=list, repr=False)
    _unbatched: bool = dataclass_field(default=False, repr=False)
    _probes: list[tuple[list[int], int, torch.Tensor, list[int]]] = dataclass_field(
        default_factory=list, repr=False
    )

    @cached_property
    def states(self) -> torch.Tensor:
        """(num_layers, D, T + 1, batch, state_size): every layer's state at every time."""
        states = torch.stack(self._layer_states)
        return states.squeeze(3) if self._unbatched else states

    @property
    def hidden(self) -> torch.Tensor:
        """Hidden states h of every layer, (num_layers, D, T + 1, batch, hidden)."""
        return self.states[..., : self.hidden_size]

    def state_gradients(self, loss: torch.Tensor, *, retain_graph: bool = True) -> torch.Tensor:
        """dLoss/dstate of every layer at every time in ``times``, in one backward pass.

        The total derivative through all later times and layers (the adjoint state at the
        sample times): for the discrete stack, the error signal that backpropagation through
        time delivers to h_t^l. Needs ``solve(..., track_state_gradients=True)``.

        Returns:
            Tensor of ``states``' shape, (num_layers, D, T + 1, batch, state_size).
        """
        if not self._probes:
            raise ValueError(
                "loss: this solution was not solved with track_state_gradients=True, "
                "so it has no handle on the state gradients"
            )
        grads = torch.autograd.grad(
            loss, [p for _, _, p, _ in self._probes], retain_graph=retain_graph, allow_unused=True
        )
        num_layers = max(max(g) for g, _, _, _ in self._probes) + 1
        num_dirs = max(d for _, d, _, _ in self._probes) + 1
        out: list[list[torch.Tensor | None]] = [[None] * num_dirs for _ in range(num_layers)]
        for (group, direction, probe, sizes), grad in zip(self._probes, grads, strict=True):
            grad = torch.zeros_like(probe) if grad is None else grad
            if direction == 1:
                grad = grad.flip(0)
            for layer, part in zip(group, grad.split(sizes, dim=-1), strict=True):
                out[layer][direction] = part
        result = torch.stack([torch.stack(row) for row in out])
        return result.squeeze(3) if result.dim() == self.states.dim() + 1 else result


class _StackODE(nn.Module):
    """Joint vector field of consecutive layers of one direction.

    Layer i's drive is its projected external path (input x, or in sampled coupling the sources'
    sampled outputs) plus ``W_ih[:, cols] h_j`` for every source j that is solved in the same ODE.
    """

    def __init__(
        self,
        fields: Sequence[VectorField],
        paths: Sequence[InputPath | None],
        internal: Sequence[Sequence[tuple[int, slice]]],
        raw_columns: Sequence[slice | None] | None = None,
    ):
        super().__init__()
        self.fields = nn.ModuleList(fields)
        self.paths = list(paths)
        self.internal = [list(s) for s in internal]
        # The weight columns that read other layers of this ODE, contiguous once per solve: a
        # column slice of weight_ih made F.linear several times slower at every evaluation.
        self._internal_weights = [
            [f.weight_ih[:, cols].contiguous() for _, cols in sources]
            for f, sources in zip(fields, internal, strict=True)
        ]
        self.sizes = [f.state_size for f in fields]
        # Where a path holds raw (unprojected) samples: the weight columns to project them with.
        self.raw_columns = list(raw_columns) if raw_columns is not None else [None] * len(fields)

    def segment(self, j: int) -> _StackODE:
        """The same stack driven by its paths' interval j only (see ``InputPath.segment``)."""
        paths = [None if p is None else p.segment(j) for p in self.paths]
        return _StackODE(self.fields, paths, self.internal, self.raw_columns)

    def path_tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors the paths are made of (the adjoint's extra parameters)."""
        return tuple(c for p in self.paths if p is not None for c in p.coefficients())

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(self.fields) == 1 and not self.internal[0] and self.raw_columns[0] is None:
            return self.fields[0](t, y, self.paths[0].evaluate(t))
        states = y.split(self.sizes, dim=-1)
        drives = self.drives(t, states)
        rates = [f(t, s, u) for f, s, u in zip(self.fields, states, drives, strict=True)]
        return torch.cat(rates, dim=-1)

    def drives(self, t: torch.Tensor, states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's projected drive u_i at time t (right-continuous at the knots)."""
        drives = []
        for i, field in enumerate(self.fields):
            path, raw = self.paths[i], self.raw_columns[i]
            if path is None:
                u = field.bias_ih
            elif raw is None:
                u = path.evaluate(t)
            else:
                u = field.project(path.evaluate(t), raw)
            for (j, _), weight in zip(self.internal[i], self._internal_weights[i], strict=True):
                drive = F.linear(self.fields[j].output(states[j]), weight)
                u = drive if u is None else u + drive
            drives.append(u)
        return drives


class ODERNN(nn.Module):
    """A stacked (bidirectional) RNN whose layers are continuous-time vector fields.

    Layer l follows dh_l/dt = F(t, h_l, W_ih x_l + b_ih) for the chosen ``cell`` (see
    ``rnnode.CELLS``), scaled by ``1 / tau``; calling the model integrates it with a torchdiffeq
    method from the state ``hx`` at t_0 through the sample times t_1..t_T.

    Arguments:
        input_size: features of x.
        hidden_size: features of each layer's hidden state h.
        num_layers: number of stacked layers.
        cell: ``"rnn"`` (Elman), ``"gru"``, ``"lstm"``, ``"linear"``, ``"antisymmetric"`` or
            ``"cornn"`` (coupled oscillators; state and ``hx`` ``(y, z)`` like the LSTM's).
        nonlinearity: ``"tanh"`` or ``"relu"`` (``cell="rnn"`` only).
        bias: whether the layers have ``bias_ih`` and ``bias_hh``.
        batch_first: inputs and outputs are (batch, T, features) instead of (T, batch, features).
        bidirectional: add a reverse direction per layer that integrates the time-reversed input.
        tau: time constant of every layer, or one per layer.

    Keyword-only arguments:
        skips: offsets of the layers feeding each layer (``(1,)``: the plain stack; ``(1, 2)``:
            layers l-1 and l-2).
        learn_tau: make the time constants trainable.
        cell_options: the cell's own coefficients, for every layer (``{"gamma": ...}`` for
            ``"antisymmetric"``; ``{"gamma": ..., "epsilon": ...}`` for ``"cornn"``).
        dropout: dropout probability on the outputs of every layer but the last, in training
            (as torch.nn.RNN; sampled coupling only).
        method, step_size, rtol, atol, interpolation, coupling: the default solve; every call may
            override them. The defaults are the exact bridge to torch.nn.RNN: ``"euler"``, one
            step per sample interval, ``"hold"``, ``"sampled"``.

    Call: ``model(x, hx=None, *, t=None, method=None, step_size=None, rtol=None, atol=None,
    interpolation=None, coupling=None, adjoint=False)`` returns ``(output, h_n)`` (LSTM:
    ``(output, (h_n, c_n))``) with torch's shapes; ``model.solve(...)`` takes the same arguments
    and returns a ``Solution`` with every layer's trajectory and the NFE.

    Notes:
        Times: ``t`` has shape (T + 1,) = (t_0, t_1, ..., t_T): the state starts from ``hx`` at
        t_0 and sample x_k is observed at t_k. Default: t_k = k. Times must increase strictly.

        The reverse direction of a bidirectional layer integrates the same field on the reflected
        path s -> x(t_0 + t_T - s); its output at sample k is its state at t_{k-1} (it has then
        consumed x_T, ..., x_k, as torch's reverse direction has).

    Warnings:
        ``coupling="continuous"`` with ``bidirectional=True`` needs ``num_layers=1``: a deeper
        bidirectional stack coupled at every instant is a boundary-value problem, not an
        initial-value problem.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "rnn",
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        tau: float | Sequence[float] = 1.0,
        *,
        skips: Sequence[int] = (1,),
        learn_tau: bool = False,
        dropout: float = 0.0,
        method: str = "euler",
        step_size: float | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        interpolation: str = "hold",
        coupling: str = "sampled",
        cell_options: Mapping[str, float] | None = None,
    ):
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        check_choice("cell", cell, CELLS)
        skips = tuple(skips)
        if (
            not skips
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in skips)
            or len(set(skips)) != len(skips)
        ):
            raise ValueError(f"skips: expected distinct positive integer offsets, got {skips!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        taus = [tau] * num_layers if isinstance(tau, (int, float)) else list(tau)
        if len(taus) != num_layers:
            raise ValueError(
                f"tau: expected one value or {num_layers} (one per layer), got {len(taus)}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.skips = tuple(sorted(skips))
        self.dropout = float(dropout)
        self.defaults = dict(
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
        )
        self._check_solver(**self.defaults)
        layers = []
        for layer in range(num_layers):
            size = sum(self._source_size(j) for j in self.sources(layer))
            for _ in range(self.num_directions):
                layers.append(
                    make_field(
                        cell,
                        size,
                        hidden_size,
                        nonlinearity=nonlinearity,
                        bias=bias,
                        tau=taus[layer],
                        learn_tau=learn_tau,
                        **dict(cell_options or {}),
                    )
                )
        #: Vector fields, index ``layer * num_directions + direction`` (torch's order of hx).
        self.layers = nn.ModuleList(layers)

    # -- structure ---------------------------------------------------------------------------

    def sources(self, layer: int) -> list[int]:
        """0-based indices of the layers feeding ``layer`` (-1: the input), by increasing offset."""
        found: list[int] = []
        for s in self.skips:
            j = max(layer - s, _INPUT)
            if j not in found:
                found.append(j)
        return found

    def _source_size(self, j: int) -> int:
        return self.input_size if j == _INPUT else self.num_directions * self.hidden_size

    def _columns(self, layer: int) -> dict[int, slice]:
        cols, start = {}, 0
        for j in self.sources(layer):
            cols[j] = slice(start, start + self._source_size(j))
            start += self._source_size(j)
        return cols

    def field(self, layer: int, direction: int = 0) -> VectorField:
        """The vector field of a layer (0-based) and direction (0 forward, 1 reverse)."""
        return self.layers[layer * self.num_directions + direction]

    @property
    def state_parts(self) -> int:
        return self.layers[0].state_parts

    # -- call ---------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, hx=None, **kwargs):
        solution = self.solve(x, hx, **kwargs)
        return solution.output, solution.h_n

    def solve(
        self,
        x: torch.Tensor,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        *,
        t: torch.Tensor | None = None,
        method: str | None = None,
        step_size: float | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        interpolation: str | None = None,
        coupling: str | None = None,
        adjoint: bool = False,
        options: dict | None = None,
        track_state_gradients: bool = False,
        return_gates: bool = False,
        detach_layers: bool = False,
    ) -> Solution:
        """Integrate the stack over the sample times; see the class docstring for arguments.

        ``options`` are passed to torchdiffeq unchanged (for example ``{"solver": "LSODA"}``
        with ``method="scipy_solver"``). ``track_state_gradients=True`` (fixed-step methods)
        lets ``Solution.state_gradients(loss)`` return dLoss/dstate at every sample time.
        ``return_gates=True`` (cells with ``gate_values``: the LSTM) fills ``Solution.gates``.
        ``detach_layers=True`` stops gradients where a layer reads other layers (sampled
        coupling): each layer's parameters then get gradients only from losses on its own states.
        """
        given = dict(
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
        )
        cfg = {k: self.defaults[k] if v is None else v for k, v in given.items()}
        self._check_solver(**cfg)
        if cfg["coupling"] == "continuous" and self.bidirectional and self.num_layers > 1:
            raise ValueError(
                "coupling: 'continuous' needs num_layers=1 when bidirectional=True (a deeper "
                "bidirectional stack coupled at every instant is not an initial-value problem); "
                f"got num_layers={self.num_layers}"
            )
        if cfg["coupling"] == "continuous" and self.dropout and self.training:
            raise ValueError(
                f"coupling: 'continuous' has no layer outputs to drop; got dropout={self.dropout} "
                "in training mode (call .eval() or use coupling='sampled')"
            )
        if return_gates and not hasattr(self.layers[0], "gate_values"):
            raise ValueError(
                "return_gates: expected a gated cell with gate_values (lstm), "
                f"got cell={self.cell!r}"
            )
        if detach_layers and cfg["coupling"] == "continuous" and self.num_layers > 1:
            raise ValueError(
                "detach_layers: layers coupled at every instant cannot be cut apart; expected "
                f"coupling='sampled', got coupling={cfg['coupling']!r}"
            )
        x, h0, unbatched = self._check_inputs(x, hx)
        times = check_times(
            "t",
            torch.arange(x.shape[0] + 1) if t is None else t,
            num_samples=x.shape[0],
            dtype=x.dtype,
        ).to(x.device)
        solve_kw = dict(
            method=cfg["method"],
            step_size=cfg["step_size"],
            rtol=cfg["rtol"],
            atol=cfg["atol"],
            adjoint=adjoint,
            options=options,
            discontinuous=cfg["interpolation"] == "hold",
        )
        options_of_group = dict(return_gates=return_gates, detach=detach_layers)
        if cfg["coupling"] == "continuous" and self.num_layers > 1:
            groups = [list(range(self.num_layers))]
        else:
            groups = [[layer] for layer in range(self.num_layers)]
        outputs: dict[int, torch.Tensor] = {_INPUT: x}
        states: list[torch.Tensor] = []
        gates: list[dict[str, torch.Tensor]] = []
        probes: list = []
        nfe = 0
        for group in groups:
            per_direction = []
            for d in range(self.num_directions):
                probe = None
                if track_state_gradients:
                    sizes = [self.field(layer).state_size for layer in group]
                    probe = x.new_zeros(x.shape[0] + 1, x.shape[1], sum(sizes), requires_grad=True)
                    probes.append((group, d, probe, sizes))
                traj, n, group_gates = self._solve_group(
                    group,
                    d,
                    outputs,
                    h0,
                    times,
                    cfg["interpolation"],
                    dict(solve_kw, probes=probe),
                    **options_of_group,
                )
                per_direction.append((traj, group_gates))
                nfe += n
            for i, layer in enumerate(group):
                layer_states = (  # (D, T + 1, B, S)
                    torch.stack([traj[i] for traj, _ in per_direction])
                    if self.bidirectional
                    else per_direction[0][0][i].unsqueeze(0)
                )
                states.append(layer_states)
                if return_gates:
                    gates.append(
                        {k: torch.stack([g[i][k] for _, g in per_direction]) for k in "ifgo"}
                    )
                field = self.field(layer)
                fwd = field.output(layer_states[0, 1:])
                if self.bidirectional:
                    # Reverse output k is its state at t_{k-1}, after consuming x_T..x_k.
                    outputs[layer] = torch.cat([fwd, field.output(layer_states[1, :-1])], -1)
                else:
                    outputs[layer] = fwd
                if self.dropout and self.training and layer < self.num_layers - 1:
                    outputs[layer] = F.dropout(outputs[layer], self.dropout, training=True)
        solution = self._package(outputs[self.num_layers - 1], states, times, nfe, unbatched)
        solution._probes = probes
        if return_gates:
            packed = {k: torch.stack([g[k] for g in gates]) for k in "ifgo"}  # (L, D, T, B, H)
            solution.gates = {k: v.squeeze(3) for k, v in packed.items()} if unbatched else packed
        return solution

    def _solve_group(
        self,
        group,
        direction,
        outputs,
        h0,
        times,
        interpolation,
        solve_kw,
        return_gates=False,
        detach=False,
    ):
        """Solve layers ``group`` of one direction as one ODE.

        Returns per-layer trajectories, the NFE and (``return_gates``) per-layer gate dicts of
        shape (T, B, hidden) in forward time order, else None.
        """
        fields, paths, internal, raw_columns = [], [], [], []
        # The adjoint differentiates the field with respect to the path's tensors and to the
        # weights: a path projected through weight_ih beforehand would count W_ih twice, so under
        # the adjoint the path holds the raw samples and the field projects them as it goes.
        project_first = not solve_kw.get("adjoint", False)
        for layer in group:
            field = self.field(layer, direction)
            cols = self._columns(layer)
            inside = [(j, c) for j, c in cols.items() if j in group]
            outside = [(j, c) for j, c in cols.items() if j not in group]
            path = None
            if outside:
                # Sources solved before this ODE: project their samples once, then interpolate.
                # Their columns are contiguous: all sources (sampled) or the input (continuous).
                first = outside[0][1].start
                last = outside[-1][1].stop
                samples = torch.cat([outputs[j] for j, _ in outside], dim=-1)
                if detach:
                    samples = samples.detach()
                columns = slice(first, last)
                u = field.project(samples, columns) if project_first else samples
                path = make_path(interpolation, times, u)
                if direction == 1:
                    path = path.reflect()
            raw_columns.append(None if project_first or path is None else columns)
            fields.append(field)
            paths.append(path)
            internal.append([(group.index(j), c) for j, c in inside])
        y0 = torch.cat([h0[layer * self.num_directions + direction] for layer in group], -1)
        grid = times if direction == 0 else (times[0] + times[-1]) - times.flip(0)
        ode = _StackODE(fields, paths, internal, raw_columns)
        traj, nfe = integrate(ode, y0, grid, **solve_kw)
        gates = None
        if return_gates:
            # The gates of the step from grid[k]: state at grid[k], drive just after grid[k].
            before = traj[:-1].split(ode.sizes, dim=-1)
            steps = [ode.drives(grid[k], [s[k] for s in before]) for k in range(len(grid) - 1)]
            gates = []
            for i, field in enumerate(fields):
                values = field.gate_values(before[i], torch.stack([u[i] for u in steps]))
                gates.append({k: v.flip(0) if direction == 1 else v for k, v in values.items()})
        if direction == 1:
            traj = traj.flip(0)
        return traj.split(ode.sizes, dim=-1), nfe, gates

    def joint_field(self, state: torch.Tensor, x: torch.Tensor, t: torch.Tensor | None = None):
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
        rates = []
        for layer in range(self.num_layers):
            field = self.field(layer)
            parts = []
            for j in self.sources(layer):
                src = x if j == _INPUT else self.field(j).output(state[..., j, :])
                parts.append(src.expand(*state.shape[:-2], src.shape[-1]))
            u = field.project(torch.cat(parts, dim=-1))
            rates.append(field(t, state[..., layer, :], u))
        return torch.stack(rates, dim=-2)

    def to_torch(self) -> nn.RNNBase:
        """The equivalent torch.nn.RNN, GRU or LSTM (see ``rnnode.to_torch``)."""
        from ._bridge import to_torch

        return to_torch(self)

    # -- checks and packaging -------------------------------------------------------------------

    def _check_solver(self, method, step_size, rtol, atol, interpolation, coupling) -> None:
        check_choice("method", method, METHODS)
        check_positive("step_size", step_size, allow_none=True)
        check_positive("rtol", rtol)
        check_positive("atol", atol)
        check_choice("interpolation", interpolation, INTERPOLATIONS)
        check_choice("coupling", coupling, COUPLINGS)

    def _check_inputs(self, x, hx):
        dtype = self.layers[0].weight_ih.dtype
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                "x: expected a tensor of rank 3, (T, batch, input_size) (or "
                "(batch, T, input_size) with batch_first), or rank 2, (T, input_size) "
                f"unbatched; got {got}"
            )
        unbatched = x.dim() == 2
        layout = (
            "(T, input_size)"
            if unbatched
            else ("(batch, T, input_size)" if self.batch_first else "(T, batch, input_size)")
        )
        shape = (None,) * (x.dim() - 1) + (self.input_size,)
        x = check_tensor("x", x, shape=shape, layout=layout, dtype=dtype)
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] < 1:
            raise ValueError("x: expected at least one time step, got T = 0")
        batch = x.shape[1]
        n = self.num_layers * self.num_directions
        parts = self.state_parts
        if hx is None:
            h0 = x.new_zeros(n, batch, parts * self.hidden_size)
        else:
            given = (hx,) if parts == 1 else hx
            names = ("hx",) if parts == 1 else tuple(f"hx[{i}]" for i in range(parts))
            if parts > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != parts):
                names_0 = ", ".join(f"{p}_0" for p in self.layers[0].part_names)
                raise ValueError(
                    f"hx: expected a tuple of {parts} tensors ({names_0}) for "
                    f"cell={self.cell!r}, got {type(hx).__name__}"
                )
            shape = (n, self.hidden_size) if unbatched else (n, batch, self.hidden_size)
            lay = (
                "(D * num_layers, hidden_size)"
                if unbatched
                else "(D * num_layers, batch, hidden_size)"
            )
            checked = [
                check_tensor(name, h, shape=shape, layout=lay, dtype=dtype)
                for name, h in zip(names, given, strict=True)
            ]
            h0 = torch.cat([h.unsqueeze(1) if unbatched else h for h in checked], dim=-1)
        return x, h0, unbatched

    def _package(self, top, layer_states, times, nfe, unbatched) -> Solution:
        H = self.hidden_size
        # Forward directions end at t_T, reverse ones at t_0; (L * D, B, S) in torch's order.
        final = torch.stack(
            [s[d, -1 if d == 0 else 0] for s in layer_states for d in range(self.num_directions)]
        )
        parts = tuple(final[..., i * H : (i + 1) * H] for i in range(self.state_parts))
        output = top
        if unbatched:
            output = output.squeeze(1)
            parts = tuple(p.squeeze(1) for p in parts)
        elif self.batch_first:
            output = output.transpose(0, 1)
        h_n = parts[0] if self.state_parts == 1 else parts
        return Solution(
            output, h_n, times, nfe, H, _layer_states=layer_states, _unbatched=unbatched
        )

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
