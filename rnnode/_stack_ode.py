"""The joint vector field of the layers of a stack solved as one ODE (``_StackODE``), and the
time grid of a solve (``_Grid``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._block import _Block
from ._fields import FieldList, VectorField
from ._paths import InputPath

__all__: list[str] = []

#: Evaluate a continuously coupled stack of one cell as one block-structured operation
#: (``_Block``); False forces the per-layer loop (the reference the tests compare it with).
_FUSE = True


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
        fields: Sequence[VectorField] | FieldList,
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
        self.fields = FieldList(fields)
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

    def pack(self, states: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
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

    def decay_rate(self) -> torch.Tensor | None:
        """The fastest leak rate of these layers (1 / tau) in the solver's time, a 0-d tensor;
        None when no layer has a leak (``VectorField.decay_rate``)."""
        rate_of = [getattr(f, "decay_rate", None) for f in self.fields]  # optional (Field)
        rates = [r for r in (of() for of in rate_of if of is not None) if r is not None]
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
            bound = getattr(field, "hidden_bound", None)  # optional (Field)
            if bound is not None:
                h = field.output(state).abs()
                ratios.append(h.max() / h[0].max().clamp(min=bound))
        return torch.stack(ratios).max() if ratios else None

    def _read(self, path: InputPath, s: torch.Tensor) -> torch.Tensor:
        hint = self._hint
        if hint is None:
            return path.evaluate(s)
        return path.evaluate(s, hint[0]) if hint[1] else path.evaluate_near(s, hint[0])

    def forward(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = s if self.clock is None else self._read(self.clock, s)
        if self._chain:
            assert self.block is not None and self.paths[0] is not None  # what _chain says
            rate = self.block.rate_chain(y, self._read(self.paths[0], s))
        elif self.block is not None:
            rate = self.block.rate(y, self.external(s))
        elif len(self.fields) == 1 and not self.internal[0] and self.raw_columns[0] is None:
            assert self.paths[0] is not None  # a single layer without sources in the ODE
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
            assert u is not None  # a layer without a path reads a layer of this ODE
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
