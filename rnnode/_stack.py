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
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from ._fields import CELLS, RelaxationField, VectorField, make_field
from ._paths import HoldPath, InputPath, LinearPath, causal_samples, clock_path, make_path
from ._settings import COUPLINGS, NOT_GIVEN, SolveSettings
from ._solve import SolverStats, integrate
from ._topology import INPUT, Topology, check_layer
from ._validate import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_probability,
    check_tensor,
    check_times,
)

__all__ = ["COUPLINGS", "ODERNN", "Solution"]


@dataclass(frozen=True)
class _Probe:
    """Zeros added to the states of ``layers`` (one direction) at every sample time, so that the
    gradient of a loss with respect to ``tensor`` is dLoss/dstate there."""

    layers: tuple[int, ...]
    direction: int
    tensor: torch.Tensor  # (T + 1, batch, sum(sizes)), in the direction's own time order
    sizes: tuple[int, ...]


@dataclass
class Solution:
    """Everything one solve of an ODERNN produced.

    Attributes:
        output: top layer's hidden states at the sample times, torch's layout:
            (T, batch, D * hidden) or (batch, T, D * hidden) when batch_first.
        h_n: final hidden states (D * num_layers, batch, hidden); for LSTM ``(h_n, c_n)``.
        times: (T + 1,) the start time t_0 and the sample times; with per-sequence times
            (T + 1, batch), or (batch, T + 1) when batch_first.
        states: (num_layers, D, T + 1, batch, state_size): every layer's full state at every time
            in ``times``, in forward time order for both directions (the reverse direction starts
            at t_T and ends at t_0).
        nfe: number of joint vector-field evaluations of the forward solve, summed over the
            solved ODEs (one per layer and direction with sampled coupling, one per direction
            with continuous coupling).
        hidden_size: features of h, the first part of each state.
        gates: with ``solve(..., return_gates=True)`` (LSTM), a dict of the gates ``i, f, g, o``,
            each (num_layers, D, T, batch, hidden): entry k is the gate of the step into sample
            k + 1, ``gate_values(state at t_k, drive at t_k^+)`` (forward time order for both
            directions, as ``output``); otherwise None.
        stats: ``rnnode.SolverStats`` of every solved ODE, keyed by (first layer, direction):
            forward NFE, accepted and rejected steps, steps per sample interval, and the
            backward NFE once ``backward()`` has run.

    For unbatched input the batch dimension is absent from all of them. ``layer_output(l)`` is
    layer l's output in the layout of ``output`` (time first); ``state_gradients(loss)`` the
    adjoint state at the sample times.
    """

    output: torch.Tensor
    h_n: torch.Tensor | tuple[torch.Tensor, ...]
    times: torch.Tensor
    nfe: int
    hidden_size: int
    gates: dict[str, torch.Tensor] | None = None
    #: Solver statistics per solved ODE: ``stats[(first layer of the group, direction)]``
    #: (one group per layer with sampled coupling, one for the whole stack with continuous
    #: coupling); ``backward_nfe`` fills in during ``backward()``.
    stats: dict[tuple[int, int], SolverStats] = dataclass_field(default_factory=dict)
    # Per-layer (D, T + 1, batch, state) trajectories; ``states`` stacks them only when asked,
    # so a plain forward call copies no trajectory it does not return.
    _layer_states: tuple[torch.Tensor, ...] = dataclass_field(default=(), repr=False)
    _unbatched: bool = dataclass_field(default=False, repr=False)
    _probes: tuple[_Probe, ...] = dataclass_field(default=(), repr=False)
    _topology: Topology | None = dataclass_field(default=None, repr=False)

    @cached_property
    def states(self) -> torch.Tensor:
        """(num_layers, D, T + 1, batch, state_size): every layer's state at every time."""
        states = torch.stack(self._layer_states)
        return states.squeeze(3) if self._unbatched else states

    @property
    def hidden(self) -> torch.Tensor:
        """Hidden states h of every layer, (num_layers, D, T + 1, batch, hidden)."""
        return self.states[..., : self.hidden_size]

    def layer_output(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s output at the sample times t_1..t_T, time first.

        Forward direction h(t_k); the reverse direction's output at sample k is its state at
        t_{k-1} (after consuming x_T..x_k), as in ``ODERNN``'s output (before dropout).

        Returns:
            (T, batch, D * hidden) (unbatched: (T, D * hidden)); for the top layer, ``output``
            in time-first layout.
        """
        if self._topology is None:
            raise ValueError("layer: this solution carries no topology to read layers from")
        layer = check_layer("layer", layer, len(self._layer_states))
        hidden = self._layer_states[layer][..., : self.hidden_size]
        out = self._topology.layer_output(hidden)
        return out.squeeze(1) if self._unbatched else out

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
            loss, [p.tensor for p in self._probes], retain_graph=retain_graph, allow_unused=True
        )
        num_layers = len(self._layer_states)
        num_dirs = max(p.direction for p in self._probes) + 1
        out: list[list[torch.Tensor | None]] = [[None] * num_dirs for _ in range(num_layers)]
        for probe, grad in zip(self._probes, grads, strict=True):
            grad = torch.zeros_like(probe.tensor) if grad is None else grad
            if probe.direction == 1:
                grad = grad.flip(0)
            for layer, part in zip(probe.layers, grad.split(probe.sizes, dim=-1), strict=True):
                out[layer][probe.direction] = part
        result = torch.stack([torch.stack(row) for row in out])
        return result.squeeze(3) if self._unbatched else result


#: Evaluate a continuously coupled stack of one cell as one block-structured operation
#: (``_Block``); False forces the per-layer loop (the reference the tests compare it with).
_FUSE = True


class _Block:
    """A group's layers stacked for one block-structured evaluation of their joint field.

    For layers of one relaxation cell and hidden size H, with states stacked as (L, B, S), the
    joint field is

        rec = b_hh + h W_hh^T            one baddbmm over the L layers,
        u_i = e_i + sum_s W_{i,s} h_{i-s}  one (b)addbmm per skip offset s over its readers,
        rate = (Phi(h, u, rec) - h) / tau  the cell's nonlinearity once on the (L, B, .) blocks,

    where e_i is layer i's external drive (its projected path, or b_ih) and W_{i,s} the columns
    of layer i's W_ih reading layer i - s. The stacked weights are made once per solve from the
    layers' own Parameters (gradients reach them through the stacking).
    """

    def __init__(self, fields, offsets, tau):
        self.cell = fields[0]
        self.hidden = fields[0].hidden_size
        self.w_hh = torch.stack([f.weight_hh for f in fields]).transpose(1, 2)  # (L, H, GH)
        bias = fields[0].bias_hh is not None
        self.b_hh = torch.stack([f.bias_hh for f in fields]).unsqueeze(1) if bias else None
        self.b_ih = torch.stack([f.bias_ih for f in fields]).unsqueeze(1) if bias else None
        #: (s, first reader, end of readers, stacked columns (readers, H, GH)) per offset s.
        self.offsets = offsets
        self.tau = tau  # (L, 1, 1), or None when every tau is a fixed 1

    @staticmethod
    def make(fields, internal, internal_weights) -> _Block | None:
        """The block of ``fields``, or None where the stack does not fit one (one layer,
        different cells or sizes, a field of its own making, readers of an offset that are not
        consecutive layers)."""
        first = fields[0]
        kind = type(first)
        if (
            len(fields) < 2
            or not isinstance(first, RelaxationField)
            or kind.forward is not RelaxationField.forward
            or kind._recurrent is not RelaxationField._recurrent
            or kind.output is not VectorField.output
        ):
            return None
        same = ("hidden_size", "state_parts", "nonlinearity")
        for f in fields[1:]:
            if type(f) is not kind or any(
                getattr(f, a, None) != getattr(first, a, None) for a in same
            ):
                return None
            if (f.bias_hh is None) != (first.bias_hh is None):
                return None
        by_offset: dict[int, list[tuple[int, torch.Tensor]]] = {}
        for i, (sources, weights) in enumerate(zip(internal, internal_weights, strict=True)):
            for (j, _), weight in zip(sources, weights, strict=True):
                by_offset.setdefault(i - j, []).append((i, weight))
        offsets = []
        for s, readers in sorted(by_offset.items()):
            rows = [i for i, _ in readers]
            if s < 1 or rows != list(range(rows[0], rows[0] + len(rows))):
                return None
            weight = torch.stack([w for _, w in readers]).transpose(1, 2)
            offsets.append((s, rows[0], rows[-1] + 1, weight))
        tau = None
        if not all(f._unit_tau for f in fields):
            tau = torch.stack([f.tau for f in fields]).reshape(-1, 1, 1)
        return _Block(fields, offsets, tau)

    @property
    def chain(self) -> bool:
        """Every layer above the first reads the one below it and nothing else of this ODE
        (the plain stack), so ``rate_chain`` applies when only the first reads a path."""
        return (
            self.b_ih is not None
            and len(self.offsets) == 1
            and self.offsets[0][:3] == (1, 1, self.w_hh.shape[0])
        )

    def rate_chain(self, y: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        """``rate`` of a chain (see ``chain``) whose first layer's external drive is ``drive``
        and whose other layers read no path: the same operations, without assembling them
        layer by layer at every evaluation."""
        h, rec = self._recurrent(y)
        inter = torch.baddbmm(self.b_ih[1:], h[:-1], self.offsets[0][3])
        u = torch.cat([drive.expand(h.shape[1], -1).unsqueeze(0), inter])
        return self._rate(y, u, rec)

    def _recurrent(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked hidden states h (L, B, H) and their recurrent products b_hh + h W_hh^T."""
        h = y if self.cell.state_parts == 1 else y[..., : self.hidden]
        if self.b_hh is None:
            return h, torch.bmm(h, self.w_hh)
        return h, torch.baddbmm(self.b_hh, h, self.w_hh)

    def _rate(self, y: torch.Tensor, u: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
        """(Phi(h, u, rec) - h) / tau, the cell's nonlinearity once on the stacked blocks."""
        rate = self.cell._rate(y, u, rec)
        return rate if self.tau is None else rate / self.tau

    def rate(self, y: torch.Tensor, external: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """d y / dt for stacked states y (L, B, S), given each layer's external drive (None:
        the layer reads no path; its drive starts from b_ih)."""
        h, rec = self._recurrent(y)
        L, B = h.shape[0], h.shape[1]

        def base(i: int) -> torch.Tensor:
            e = external[i]
            if e is not None:
                return e.expand(B, -1)
            if self.b_ih is not None:
                return self.b_ih[i].expand(B, -1)
            return h.new_zeros(B, rec.shape[-1])

        u = None
        for s, a, b, weight in self.offsets:
            if u is None:  # the first offset's readers start from their external drives
                if all(external[i] is None for i in range(a, b)) and self.b_ih is not None:
                    start = self.b_ih[a:b]
                else:
                    start = torch.stack([base(i) for i in range(a, b)])
                block = torch.baddbmm(start, h[a - s : b - s], weight)
                parts = [base(i).unsqueeze(0) for i in range(a)]
                parts += [block] + [base(i).unsqueeze(0) for i in range(b, L)]
                u = torch.cat(parts) if len(parts) > 1 else block
            else:
                u = torch.cat([u[:a], torch.baddbmm(u[a:b], h[a - s : b - s], weight), u[b:]])
        return self._rate(y, u, rec)


class _StackODE(nn.Module):
    """Joint vector field of consecutive layers of one direction.

    Layer i's drive is its projected external path (input x, or in sampled coupling the sources'
    sampled outputs) plus ``W_ih[:, cols] h_j`` for every source j that is solved in the same ODE.
    Where the layers fit one ``_Block`` (one cell and size), the joint field is evaluated as one
    block-structured operation on states stacked as (layers, batch, state); otherwise layer by
    layer on states concatenated as (batch, sum of state sizes). ``pack`` and ``unpack`` convert
    between the per-layer states and the ODE's layout.

    Arguments:
        fields: the layers' fields, in group order.
        paths: each layer's external path (None: no source outside this ODE).
        internal: for each layer, ``(i, columns)`` of every source solved in this ODE (i: its
            index in ``fields``; columns: the columns of W_ih reading it).
        raw_columns: where a path holds raw (unprojected) samples, the columns projecting them.
        internal_weights: the contiguous column blocks of ``internal`` (made here when None).
        speed, clock: with per-sample times, the ODE is solved in a shared clock s: ``speed``
            holds dt_b/ds (B, 1) on every interval and ``clock`` t_b(s) (B, 1); the rate is
            dy/ds = F(t_b(s), y, u(s)) dt_b/ds. None: s is t.
        block: the stacked weights (made here when None and the layers fit one).
    """

    def __init__(
        self,
        fields: Sequence[VectorField],
        paths: Sequence[InputPath | None],
        internal: Sequence[Sequence[tuple[int, slice]]],
        raw_columns: Sequence[slice | None] | None = None,
        internal_weights: Sequence[Sequence[torch.Tensor]] | None = None,
        speed: InputPath | None = None,
        clock: InputPath | None = None,
        block: _Block | None = None,
    ):
        super().__init__()
        self.speed = speed
        self.clock = clock
        self.fields = nn.ModuleList(fields)
        self.paths = list(paths)
        self.internal = [list(s) for s in internal]
        # The weight columns that read other layers of this ODE, made contiguous once per solve
        # (a column slice of weight_ih made F.linear several times slower at every evaluation);
        # the adjoint's per-interval segments share them rather than copying them again.
        if internal_weights is None:
            internal_weights = [
                [f.weight_ih[:, cols].contiguous() for _, cols in sources]
                for f, sources in zip(fields, internal, strict=True)
            ]
        self._internal_weights = [list(w) for w in internal_weights]
        self.sizes = [f.state_size for f in fields]
        self.raw_columns = list(raw_columns) if raw_columns is not None else [None] * len(fields)
        if block is None and _FUSE:
            block = _Block.make(fields, self.internal, self._internal_weights)
        self.block = block
        # The plain stack driven through its first layer only: the block's short path.
        self._chain = (
            block is not None
            and block.chain
            and self.paths[0] is not None
            and self.raw_columns[0] is None
            and all(p is None for p in self.paths[1:])
        )
        # The knot interval every evaluation lies in, where the solver knows it (``at_interval``).
        self._hint: tuple[int, bool] | None = None

    def pack(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """The ODE's state from the layers' states (each (..., B, S)): (..., L, B, S) stacked
        for a block, (..., B, sum S) concatenated otherwise."""
        if self.block is not None:
            return torch.stack(states, dim=-3)
        return torch.cat(states, dim=-1)

    def unpack(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The layers' states (each (..., B, S)) from the ODE's state (``pack``'s inverse)."""
        return y.unbind(-3) if self.block is not None else y.split(self.sizes, dim=-1)

    def layout(self, flat: torch.Tensor) -> torch.Tensor:
        """A (..., B, sum S) tensor in the ODE's layout (a view)."""
        if self.block is None:
            return flat
        return flat.unflatten(-1, (len(self.sizes), self.sizes[0])).transpose(-3, -2)

    def at_interval(self, interval: int | None, exact: bool = True) -> None:
        """Tell the paths which knot interval the next evaluations lie in, so that they read it
        without a host synchronisation: ``exact``: in [s_j, s_{j+1}] (a fixed-step solve);
        otherwise in [s_j, s_{j+2}) (an adaptive one, chosen on the device). None: look up."""
        self._hint = None if interval is None else (interval, exact)

    def segment(self, j: int) -> _StackODE:
        """The same stack driven by its paths' interval j only (see ``InputPath.segment``)."""
        *paths, speed, clock = (
            None if p is None else p.segment(j) for p in (*self.paths, self.speed, self.clock)
        )
        return self._with_paths(paths, speed, clock)

    def _with_paths(
        self,
        paths: Sequence[InputPath | None],
        speed: InputPath | None,
        clock: InputPath | None,
    ) -> _StackODE:
        """The same layers and weights (shared, not copied) reading other paths."""
        return _StackODE(
            self.fields,
            paths,
            self.internal,
            self.raw_columns,
            self._internal_weights,
            speed,
            clock,
            self.block,
        )

    def path_tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors the paths read, coefficients and knot times (the adjoint's extra
        parameters; the solver keeps those that require grad)."""
        paths = [*self.paths, self.speed, self.clock]
        return tuple(c for p in paths if p is not None for c in p.tensors())

    def with_path_tensors(self, tensors: Sequence[torch.Tensor]) -> _StackODE:
        """The same stack with its paths reading ``tensors`` (``path_tensors()``'s order)."""
        rest = list(tensors)
        rebuilt: list[InputPath | None] = []
        for path in [*self.paths, self.speed, self.clock]:
            if path is None:
                rebuilt.append(None)
                continue
            n = len(path.tensors())
            rebuilt.append(path.with_tensors(rest[:n]))
            rest = rest[n:]
        *paths, speed, clock = rebuilt
        return self._with_paths(paths, speed, clock)

    @property
    def is_continuous(self) -> bool:
        """Whether the field is continuous in time: every path it reads is (a held input, and
        dt_b/ds with per-sample times, jump at the knots)."""
        paths = (*self.paths, self.speed, self.clock)
        return all(p.is_continuous for p in paths if p is not None)

    def decay_rate(self) -> torch.Tensor | None:
        """The fastest leak rate of these layers (1 / tau) in the solver's time, a 0-d tensor;
        None when no layer has a leak (``VectorField.decay_rate``)."""
        rates = [r for r in (f.decay_rate() for f in self.fields) if r is not None]
        if not rates:
            return None
        rate = torch.stack(rates).max()
        return rate if self.speed is None else rate * self.speed.values.detach().abs().max()

    def box_excess(self, trajectory: torch.Tensor) -> torch.Tensor | None:
        """max |h_i(t)| / max(B, max |h(0)|) over the layers whose field keeps h within a bound B
        (``VectorField.hidden_bound``), a 0-d tensor; the exact flow keeps it at most 1. None:
        no layer has a bound. ``trajectory``: (T + 1, ...) in the ODE's layout."""
        ratios = []
        for field, state in zip(self.fields, self.unpack(trajectory.detach()), strict=True):
            if field.hidden_bound is not None:
                h = field.output(state).abs()
                ratios.append(h.max() / h[0].max().clamp(min=field.hidden_bound))
        return torch.stack(ratios).max() if ratios else None

    def _read(self, path: InputPath, s: torch.Tensor) -> torch.Tensor:
        hint = self._hint
        if hint is None:
            return path.evaluate(s)
        return path.evaluate(s, hint[0]) if hint[1] else path.evaluate_near(s, hint[0])

    def forward(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = s if self.clock is None else self._read(self.clock, s)
        if self._chain:
            rate = self.block.rate_chain(y, self._read(self.paths[0], s))
        elif self.block is not None:
            rate = self.block.rate(y, self.external(s))
        elif len(self.fields) == 1 and not self.internal[0] and self.raw_columns[0] is None:
            rate = self.fields[0](t, y, self._read(self.paths[0], s))
        else:
            states = self.unpack(y)
            drives = self.drives(s, states)
            rates = [f(t, h, u) for f, h, u in zip(self.fields, states, drives, strict=True)]
            rate = torch.cat(rates, dim=-1)
        return rate if self.speed is None else rate * self._read(self.speed, s)

    def external(self, t: torch.Tensor) -> list[torch.Tensor | None]:
        """Each layer's projected external drive at (clock) time t (None: no path)."""
        out: list[torch.Tensor | None] = []
        for field, path, raw in zip(self.fields, self.paths, self.raw_columns, strict=True):
            if path is None:
                out.append(None)
            elif raw is None:
                out.append(self._read(path, t))
            else:
                out.append(field.project(self._read(path, t), raw))
        return out

    def drives(self, t: torch.Tensor, states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's projected drive u_i at (clock) time t (right-continuous at the knots)."""
        drives = []
        for i, (field, e) in enumerate(zip(self.fields, self.external(t), strict=True)):
            u = field.bias_ih if e is None else e
            for (j, _), weight in zip(self.internal[i], self._internal_weights[i], strict=True):
                drive = F.linear(self.fields[j].output(states[j]), weight)
                u = drive if u is None else u + drive
            drives.append(u)
        return drives


def _reflect(times: torch.Tensor) -> torch.Tensor:
    """Reflected times t_0 + t_T - t, in increasing order (per sequence for (T + 1, B))."""
    return (times[0] + times[-1]) - times.flip(0)


@dataclass(frozen=True)
class _Grid:
    """The times of one solve, time first: shared (T + 1,), or per sequence (T + 1, B).

    Per-sequence times are solved in a shared clock s whose integer knots 0..T map to each
    sequence's own times (``knots``: the solver's grid; ``widths``: dt_b/ds on each interval).
    """

    times: torch.Tensor

    @property
    def per_sample(self) -> bool:
        return self.times.dim() == 2

    @property
    def knots(self) -> torch.Tensor:
        if not self.per_sample:
            return self.times
        T1 = self.times.shape[0]
        return torch.arange(T1, dtype=self.times.dtype, device=self.times.device)

    @property
    def widths(self) -> torch.Tensor:
        return self.times[1:] - self.times[:-1]


@dataclass
class _Plan:
    """How one call is solved: checked settings, inputs (time first), times, solver keywords and
    flags; ``outputs`` and ``probes`` fill up as the groups are solved."""

    settings: SolveSettings
    x: torch.Tensor  # (T, B, input_size)
    h0: torch.Tensor  # (D * num_layers, B, state_size)
    unbatched: bool
    grid: _Grid
    solve_kw: dict
    track_state_gradients: bool = False
    return_gates: bool = False
    detach_layers: bool = False
    outputs: dict[int, torch.Tensor] = dataclass_field(default_factory=dict)
    probes: list[_Probe] = dataclass_field(default_factory=list)


@dataclass
class _Solved:
    """One ODE of the stack solved: its layers' trajectories (forward time order), its NFE and
    (``return_gates``) its layers' gate dicts."""

    states: tuple[torch.Tensor, ...]  # per layer (T + 1, B, S); for the stack (D, T + 1, B, S)
    nfe: int
    gates: list[dict[str, torch.Tensor]] | None
    stats: dict[tuple[int, int], SolverStats] = dataclass_field(default_factory=dict)


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
        engine: str = "rnnode",
    ) -> None:
        """Build the stack; the weights are initialised as torch.nn's.

        Arguments:
            input_size: features of x.
            hidden_size: features of each layer's hidden state h.
            num_layers: number of stacked layers.
            cell: ``"rnn"`` (Elman), ``"gru"``, ``"lstm"``, ``"linear"``, ``"antisymmetric"`` or
                ``"cornn"`` (coupled oscillators; state and ``hx`` ``(y, z)`` like the LSTM's).
            nonlinearity: ``"tanh"`` (default) or ``"relu"``; ``cell="rnn"`` only (given with
                another cell, it is refused).
            bias: whether the layers have ``bias_ih`` and ``bias_hh``.
            batch_first: inputs and outputs are (batch, T, features) instead of
                (T, batch, features).
            bidirectional: add a reverse direction per layer that integrates the time-reversed
                input.
            tau: time constant of every layer (a positive finite number), or a list of one per
                layer.
            skips: offsets of the layers feeding each layer (``(1,)``: the plain stack;
                ``(1, 2)``: layers l-1 and l-2).
            learn_tau: make the time constants trainable (kept positive as ``exp(log_tau)``).
            dropout: dropout probability in [0, 1) on the outputs of every layer but the last,
                in training (as torch.nn.RNN; sampled coupling only).
            method, step_size, rtol, atol, interpolation, coupling: the default solve, held as
                ``self.defaults`` (a frozen ``rnnode.SolveSettings``); every call may override
                each of them. The defaults are the exact bridge to torch.nn.RNN: ``"euler"``,
                one step per sample interval (``step_size=None``), ``"hold"``, ``"sampled"``.
            engine: who steps the default solve, ``"rnnode"`` or ``"torchdiffeq"`` (see
                ``rnnode.SolveSettings``).
            cell_options: the cell's own coefficients, for every layer (``{"gamma": ...}`` for
                ``"antisymmetric"``; ``{"gamma": ..., "epsilon": ...}`` for ``"cornn"``).

        Raises:
            TypeError: an argument of the wrong type (the message names it).
            ValueError: an argument of the right type but an invalid value.
        """
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
        check_int("num_layers", num_layers, minimum=1)
        check_choice("cell", cell, CELLS)
        if cell == "rnn":
            nonlinearity = "tanh" if nonlinearity is None else nonlinearity
            check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        elif nonlinearity is not None:
            raise ValueError(
                f"nonlinearity: applies to cell='rnn' only; got nonlinearity={nonlinearity!r} "
                f"with cell={cell!r} (whose nonlinearities are fixed)"
            )
        for name, flag in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
            ("learn_tau", learn_tau),
        ):
            check_bool(name, flag)
        skips = _check_skips(skips)
        dropout = check_probability("dropout", dropout)
        taus = _check_taus(tau, num_layers)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        #: ``"tanh"`` or ``"relu"`` for ``cell="rnn"``; None for the other cells.
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.skips = skips
        self.dropout = dropout
        #: The default solve; each keyword of a call overrides one of its settings.
        self.defaults = SolveSettings(
            method=method,
            step_size=step_size,
            rtol=rtol,
            atol=atol,
            interpolation=interpolation,
            coupling=coupling,
            engine=engine,
        )
        #: The stack's wiring: sources, weight columns, groups and output layout.
        self.topology = Topology(input_size, hidden_size, num_layers, self.num_directions, skips)
        layers = []
        for layer in range(num_layers):
            for _ in range(self.num_directions):
                layers.append(
                    make_field(
                        cell,
                        self.topology.drive_size(layer),
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
        x: torch.Tensor,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        **solve_options: object,
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, ...]]:
        """Integrate the stack over the sample times: torch.nn.RNN's call.

        Arguments:
            x: (T, batch, input_size), or (batch, T, input_size) with ``batch_first``, or
                (T, input_size) unbatched; the model's dtype.
            hx: initial states at t_0, (D * num_layers, batch, hidden) (unbatched: without
                batch); for the LSTM and coRNN a pair ``(h_0, c_0)`` / ``(y_0, z_0)``. Zeros
                when None.
            **solve_options: any keyword of ``solve``: ``t`` (the (T + 1,) times, default
                0, 1, ..., T, or per sequence), ``method``, ``step_size``, ``rtol``, ``atol``,
                ``interpolation``, ``coupling`` (each overrides the model's default on its
                own), ``adjoint``, ``options``.

        Returns:
            ``(output, h_n)``: output (T, batch, D * hidden) (batch first with
            ``batch_first``), the top layer's hidden state at t_1..t_T; h_n
            (D * num_layers, batch, hidden), the final states (LSTM: ``(h_n, c_n)``).
        """
        solution = self.solve(x, hx, **solve_options)
        return solution.output, solution.h_n

    def solve(
        self,
        x: torch.Tensor,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        *,
        t: torch.Tensor | None = None,
        method: str = NOT_GIVEN,  # type: ignore[assignment]
        step_size: float | None = NOT_GIVEN,  # type: ignore[assignment]
        rtol: float = NOT_GIVEN,  # type: ignore[assignment]
        atol: float = NOT_GIVEN,  # type: ignore[assignment]
        interpolation: str = NOT_GIVEN,  # type: ignore[assignment]
        coupling: str = NOT_GIVEN,  # type: ignore[assignment]
        engine: str = NOT_GIVEN,  # type: ignore[assignment]
        adjoint: bool = False,
        options: dict | None = None,
        track_state_gradients: bool = False,
        return_gates: bool = False,
        detach_layers: bool = False,
    ) -> Solution:
        """Integrate the stack over the sample times and return everything it produced.

        Arguments:
            x, hx: as ``forward``.
            t: (T + 1,) strictly increasing times t_0..t_T (default 0, 1, ..., T), or each
                sequence's own, (T + 1, batch) or (batch, T + 1) with ``batch_first`` (see the
                class notes); cast to the model's dtype before they are checked.
            method, step_size, rtol, atol, interpolation, coupling: override the model's
                default solve (``self.defaults``) one by one; a keyword not given keeps the
                default. ``step_size=None`` asks for one step per sample interval; switching to
                an adaptive method drops the default step size (see ``rnnode.SolveSettings``).
            engine: ``"rnnode"`` (default) or ``"torchdiffeq"``: the same solve through
                ``torchdiffeq.odeint`` (the same steps, slower; see ``rnnode.integrate``).
            adjoint: backpropagate with torchdiffeq's adjoint, one sample interval at a time.
            options: passed to torchdiffeq unchanged (for example ``{"solver": "LSODA"}`` with
                ``method="scipy_solver"``).
            track_state_gradients: (fixed-step methods) let ``Solution.state_gradients(loss)``
                return dLoss/dstate at every sample time.
            return_gates: (cells with ``gate_values``: the LSTM) fill ``Solution.gates``.
            detach_layers: stop gradients where a layer reads other layers (sampled coupling):
                each layer's parameters then get gradients only from losses on its own states.

        Returns:
            A ``Solution``.
        """
        plan = self._plan(
            x,
            hx,
            t,
            dict(
                method=method,
                step_size=step_size,
                rtol=rtol,
                atol=atol,
                interpolation=interpolation,
                coupling=coupling,
                engine=engine,
            ),
            adjoint=adjoint,
            options=options,
            track_state_gradients=track_state_gradients,
            return_gates=return_gates,
            detach_layers=detach_layers,
        )
        return self._package(plan, self._solve_groups(plan))

    def _plan(self, x, hx, t, given, *, adjoint, options, **flags) -> _Plan:
        """Check everything and decide how to solve: settings, inputs, times, solver keywords."""
        settings = self.defaults.override(**given)
        for name, flag in (("adjoint", adjoint), *flags.items()):
            check_bool(name, flag)
        self._check_call(
            settings, return_gates=flags["return_gates"], detach_layers=flags["detach_layers"]
        )
        x, h0, unbatched = self._check_inputs(x, hx)
        grid = _Grid(
            check_times(
                "t",
                torch.arange(x.shape[0] + 1) if t is None else t,
                num_samples=x.shape[0],
                dtype=x.dtype,
                batch=None if unbatched else x.shape[1],
                batch_first=self.batch_first,
            ).to(x.device)
        )
        step_size = settings.step_size
        if grid.per_sample and step_size is not None:
            # Every interval takes the step count of the batch's widest: no step exceeds it.
            step_size = step_size / float(grid.widths.detach().max())
        solve_kw = dict(
            method=settings.method,
            step_size=step_size,
            rtol=settings.rtol,
            atol=settings.atol,
            adjoint=adjoint,
            options=options,
            engine=settings.engine,
        )
        return _Plan(settings, x, h0, unbatched, grid, solve_kw, **flags)

    def _solve_groups(self, plan: _Plan) -> _Solved:
        """Solve every group of layers, both directions, each from the outputs of those before.

        Returns the stack's results as one ``_Solved``: per-layer (D, T + 1, B, S) states, the
        total NFE and per-layer (D, T, B, H) gate dicts; ``plan.outputs`` holds every layer's
        output (after dropout) and ``plan.probes`` the state-gradient probes.
        """
        x = plan.x
        outputs = plan.outputs
        outputs[INPUT] = x
        layer_states: list[torch.Tensor] = [x] * self.num_layers
        gates: list[dict[str, torch.Tensor]] = [{}] * self.num_layers
        nfe = 0
        stats: dict[tuple[int, int], SolverStats] = {}
        for group in self.topology.groups(plan.settings.coupling):
            solved = []
            for direction in range(self.num_directions):
                probe = None
                if plan.track_state_gradients:
                    sizes = tuple(self.field(layer).state_size for layer in group)
                    zeros = x.new_zeros(x.shape[0] + 1, x.shape[1], sum(sizes), requires_grad=True)
                    probe = _Probe(tuple(group), direction, zeros, sizes)
                    plan.probes.append(probe)
                result = self._solve_group(
                    group,
                    direction,
                    outputs,
                    plan.h0,
                    plan.grid,
                    plan.settings.interpolation,
                    dict(
                        plan.solve_kw,
                        probes=None if probe is None else probe.tensor,
                        stats=stats.setdefault((group[0], direction), SolverStats()),
                    ),
                    return_gates=plan.return_gates,
                    detach=plan.detach_layers,
                )
                solved.append(result)
                nfe += result.nfe
            for i, layer in enumerate(group):
                layer_states[layer] = torch.stack([r.states[i] for r in solved])  # (D, T+1, B, S)
                if plan.return_gates:
                    gates[layer] = {k: torch.stack([r.gates[i][k] for r in solved]) for k in "ifgo"}
                hidden = self.field(layer).output(layer_states[layer])
                outputs[layer] = self.topology.layer_output(hidden)
                if self.dropout and self.training and layer < self.num_layers - 1:
                    outputs[layer] = F.dropout(outputs[layer], self.dropout, training=True)
        return _Solved(tuple(layer_states), nfe, gates if plan.return_gates else None, stats)

    def _solve_group(
        self,
        group: list[int],
        direction: int,
        outputs: Mapping[int, torch.Tensor],
        h0: torch.Tensor,
        grid: _Grid,
        interpolation: str,
        solve_kw: dict,
        return_gates: bool = False,
        detach: bool = False,
    ) -> _Solved:
        """Solve layers ``group`` of one direction as one ODE, driven by ``outputs`` (the input
        and the outputs of the layers solved before)."""
        fields, paths, internal, raw_columns = [], [], [], []
        # The adjoint differentiates the field with respect to the path's tensors and to the
        # weights: a path projected through weight_ih beforehand would count W_ih twice, so under
        # the adjoint the path holds the raw samples and the field projects them as it goes.
        project_first = not solve_kw.get("adjoint", False)
        for layer in group:
            field = self.field(layer, direction)
            cols = self.topology.columns(layer)
            inside = [(j, c) for j, c in cols.items() if j in group]
            outside = [(j, c) for j, c in cols.items() if j not in group]
            path, columns = None, None
            if outside:
                # Sources solved before this ODE: project their samples once, then interpolate.
                # Their columns are contiguous: all sources (sampled) or the input (continuous).
                columns = slice(outside[0][1].start, outside[-1][1].stop)
                samples = torch.cat([outputs[j] for j, _ in outside], dim=-1)
                if detach:
                    samples = samples.detach()
                if interpolation == "causal":  # shift the raw samples, then project (0 -> b_ih)
                    samples = causal_samples(samples)
                u = field.project(samples, columns) if project_first else samples
                kind = "hold" if interpolation == "causal" else interpolation
                if grid.per_sample:
                    path = clock_path(kind, grid.widths, u, reverse=direction == 1)
                else:
                    path = make_path(kind, grid.times, u)
                    if direction == 1:
                        path = path.reflect()
            raw_columns.append(None if project_first else columns)
            fields.append(field)
            paths.append(path)
            internal.append([(group.index(j), c) for j, c in inside])
        states0 = [h0[layer * self.num_directions + direction] for layer in group]
        knots = grid.knots if direction == 0 else _reflect(grid.knots)
        speed = clock = None
        if grid.per_sample:
            widths = grid.widths.flip(0) if direction == 1 else grid.widths
            speed = HoldPath(knots, widths.unsqueeze(-1))  # dt_b/ds on every interval
            own = grid.times if direction == 0 else _reflect(grid.times)
            clock = LinearPath(knots, own.unsqueeze(-1))  # t_b(s)
        ode = _StackODE(fields, paths, internal, raw_columns, speed=speed, clock=clock)
        if solve_kw.get("probes") is not None:
            solve_kw = dict(solve_kw, probes=ode.layout(solve_kw["probes"]))
        stats = solve_kw["stats"]  # the NFE is kept once, in the SolverStats
        before = stats.nfe
        traj = integrate(ode, ode.pack(states0), knots, **solve_kw)
        nfe = stats.nfe - before
        states = ode.unpack(traj)
        gates = None
        if return_gates:
            # The gates of the step from knot k: state at knot k, drive just after it.
            steps = []
            for k in range(len(knots) - 1):
                ode.at_interval(k)
                steps.append(ode.drives(knots[k], [s[k] for s in states]))
            ode.at_interval(None)
            before = [s[:-1] for s in states]
            gates = []
            for i, field in enumerate(fields):
                values = field.gate_values(before[i], torch.stack([u[i] for u in steps]))
                gates.append({k: v.flip(0) if direction == 1 else v for k, v in values.items()})
        if direction == 1:
            states = tuple(s.flip(0) for s in states)
        return _Solved(tuple(states), nfe, gates)

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

    def _check_call(self, settings: SolveSettings, *, return_gates: bool, detach_layers: bool):
        if settings.coupling == "continuous" and self.bidirectional and self.num_layers > 1:
            raise ValueError(
                "coupling: 'continuous' needs num_layers=1 when bidirectional=True (a deeper "
                "bidirectional stack coupled at every instant is not an initial-value problem); "
                f"got num_layers={self.num_layers}"
            )
        if settings.coupling == "continuous" and self.dropout and self.training:
            raise ValueError(
                f"coupling: 'continuous' has no layer outputs to drop; got dropout={self.dropout} "
                "in training mode (call .eval() or use coupling='sampled')"
            )
        if return_gates and not hasattr(self.layers[0], "gate_values"):
            raise ValueError(
                "return_gates: expected a gated cell with gate_values (lstm), "
                f"got cell={self.cell!r}"
            )
        if detach_layers and settings.coupling == "continuous" and self.num_layers > 1:
            raise ValueError(
                "detach_layers: layers coupled at every instant cannot be cut apart; expected "
                f"coupling='sampled', got coupling={settings.coupling!r}"
            )

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

    def _package(self, plan: _Plan, solved: _Solved) -> Solution:
        """The ``Solution``, in torch's layouts, from the stack's results."""
        H, unbatched = self.hidden_size, plan.unbatched
        # Forward directions end at t_T, reverse ones at t_0; (L * D, B, S) in torch's order.
        final = torch.stack(
            [s[d, -1 if d == 0 else 0] for s in solved.states for d in range(self.num_directions)]
        )
        parts = tuple(final[..., i * H : (i + 1) * H] for i in range(self.state_parts))
        output = plan.outputs[self.num_layers - 1]
        if unbatched:
            output = output.squeeze(1)
            parts = tuple(p.squeeze(1) for p in parts)
        elif self.batch_first:
            output = output.transpose(0, 1)
        gates = None
        if solved.gates is not None:
            gates = {k: torch.stack([g[k] for g in solved.gates]) for k in "ifgo"}  # (L,D,T,B,H)
            if unbatched:
                gates = {k: v.squeeze(3) for k, v in gates.items()}
        times = plan.grid.times
        if plan.grid.per_sample and self.batch_first:
            times = times.transpose(0, 1)
        return Solution(
            output,
            parts[0] if self.state_parts == 1 else parts,
            times,
            solved.nfe,
            H,
            gates=gates,
            stats=solved.stats,
            _layer_states=solved.states,
            _unbatched=unbatched,
            _probes=tuple(plan.probes),
            _topology=self.topology,
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


def _check_taus(tau: object, num_layers: int) -> list[float]:
    """One positive finite time constant per layer, from one number or a list of them."""
    if isinstance(tau, numbers.Real) and not isinstance(tau, bool):
        return [check_positive("tau", tau)] * num_layers
    if isinstance(tau, (list, tuple)):
        if len(tau) != num_layers:
            raise ValueError(
                f"tau: expected one value or {num_layers} (one per layer), got {len(tau)}"
            )
        return [check_positive(f"tau[{i}]", value) for i, value in enumerate(tau)]
    hint = " (pass float(tau) for a 0-d tensor)" if isinstance(tau, torch.Tensor) else ""
    got = f"a tensor of shape {tuple(tau.shape)}" if isinstance(tau, torch.Tensor) else repr(tau)
    raise TypeError(
        f"tau: expected a positive finite number or a list of {num_layers} (one per layer), "
        f"got {got}{hint}"
    )
