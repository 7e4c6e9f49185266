"""One call of an ``ODERNN``: the checks, the plan (settings, inputs, time grid, solver keywords),
the groups of layers solved one after another, and the ``Solution`` packaged in torch's layouts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from ._field_protocol import Field
from ._paths import (
    HoldPath,
    InputPath,
    LinearPath,
    _Segment,
    as_held,
    clock_path,
    make_path,
)
from ._settings import SolveSettings
from ._solution import Solution, _Probe
from ._solve import SolverStats, integrate
from ._stack_ode import _Grid, _reflect, _StackODE
from ._topology import INPUT
from ._validate import check_bool, check_tensor, check_times

if TYPE_CHECKING:
    from ._stack import ODERNN

__all__: list[str] = []


@runtime_checkable
class _Gated(Protocol):
    """A field with gates (the LSTM's): ``solve(return_gates=True)`` reads them."""

    def gate_values(self, state: torch.Tensor, u: torch.Tensor) -> dict[str, torch.Tensor]: ...


@dataclass
class _Plan:
    """How one call is solved: checked settings, inputs (time first), times, solver keywords and
    flags; ``outputs`` and ``probes`` fill up as the groups are solved."""

    settings: SolveSettings
    x: torch.Tensor | InputPath  # (T, B, input_size), or the input path
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


def make_plan(model: ODERNN, x, hx, t, given, *, adjoint, options, **flags) -> _Plan:
    """Check everything and decide how to solve: settings, inputs, times, solver keywords."""
    settings = model.defaults.override(**given)
    for name, flag in (("adjoint", adjoint), *flags.items()):
        check_bool(name, flag)
    check_call(
        model, settings, return_gates=flags["return_gates"], detach_layers=flags["detach_layers"]
    )
    x, h0, unbatched = check_inputs(model, x, hx)
    if isinstance(x, InputPath):
        if t is not None:
            raise ValueError(
                "t: an InputPath x carries its own sample times (x.times); got t as well"
            )
        grid = _Grid(x.times)
    else:
        grid = _Grid(
            check_times(
                "t",
                torch.arange(x.shape[0] + 1) if t is None else t,
                num_samples=x.shape[0],
                dtype=x.dtype,
                batch=None if unbatched else x.shape[1],
                batch_first=model.batch_first,
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
        # With per-sample times dt_b/ds jumps at the knots, whatever the interpolation.
        discontinuous=_discontinuous(model, settings, x, grid),
    )
    return _Plan(settings, x, h0, unbatched, grid, solve_kw, **flags)


def _discontinuous(model: ODERNN, settings: SolveSettings, x: object, grid: _Grid) -> bool:
    """Whether some path of the solve jumps at the knots (the solver must step onto them)."""
    held = settings.interpolation in ("hold", "causal")
    if not isinstance(x, InputPath):
        return held or grid.per_sample
    reads_outputs = settings.coupling == "sampled" and model.num_layers > 1
    return not x.is_continuous or (held and reads_outputs)


def _input_path(
    path: InputPath, field: Field, columns: slice, project: bool, reverse: bool, unbatched: bool
) -> InputPath:
    """A layer's drive from an input path: its polynomial pieces projected through the columns
    of W_ih (b_ih on the constant piece), or raw where the field projects as it goes."""
    if reverse:
        path = path.reflect()
    pieces = path.coefficients()
    if unbatched:
        pieces = tuple(a.unsqueeze(-2) for a in pieces)
    if project:
        pieces = tuple(field.project(a, columns, bias=p == 0) for p, a in enumerate(pieces))
    return _Segment(path.times, pieces)


def solve_groups(model: ODERNN, plan: _Plan) -> _Solved:
    """Solve every group of layers, both directions, each from the outputs of those before.

    Returns the stack's results as one ``_Solved``: per-layer (D, T + 1, B, S) states, the
    total NFE and per-layer (D, T, B, H) gate dicts; ``plan.outputs`` holds every layer's
    output (after dropout) and ``plan.probes`` the state-gradient probes.
    """
    x = plan.x
    outputs = plan.outputs
    if isinstance(x, torch.Tensor):  # samples; a path is read by the layers it drives
        outputs[INPUT] = x
    input_path = x if isinstance(x, InputPath) else None
    layer_states: list[torch.Tensor] = [plan.h0] * model.num_layers
    gates: list[dict[str, torch.Tensor]] = [{}] * model.num_layers
    nfe = 0
    stats: dict[tuple[int, int], SolverStats] = {}
    for group in model.topology.groups(plan.settings.coupling):
        solved = []
        for direction in range(model.num_directions):
            probe = None
            if plan.track_state_gradients:
                sizes = tuple(model.field(layer).state_size for layer in group)
                zeros = plan.h0.new_zeros(
                    len(plan.grid.times), plan.h0.shape[1], sum(sizes), requires_grad=True
                )
                probe = _Probe(tuple(group), direction, zeros, sizes)
                plan.probes.append(probe)
            result = solve_group(
                model,
                input_path,
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
                unbatched=plan.unbatched,
            )
            solved.append(result)
            nfe += result.nfe
        for i, layer in enumerate(group):
            layer_states[layer] = torch.stack([r.states[i] for r in solved])  # (D, T+1, B, S)
            if plan.return_gates:
                per_direction = [r.gates for r in solved if r.gates is not None]
                gates[layer] = {k: torch.stack([g[i][k] for g in per_direction]) for k in "ifgo"}
            hidden = model.field(layer).output(layer_states[layer])
            outputs[layer] = model.topology.layer_output(hidden)
            if model.dropout and model.training and layer < model.num_layers - 1:
                outputs[layer] = F.dropout(outputs[layer], model.dropout, training=True)
    return _Solved(tuple(layer_states), nfe, gates if plan.return_gates else None, stats)


def solve_group(
    model: ODERNN,
    input_path: InputPath | None,
    group: list[int],
    direction: int,
    outputs: Mapping[int, torch.Tensor],
    h0: torch.Tensor,
    grid: _Grid,
    interpolation: str,
    solve_kw: dict,
    return_gates: bool = False,
    detach: bool = False,
    unbatched: bool = False,
) -> _Solved:
    """Solve layers ``group`` of one direction as one ODE, driven by ``input_path`` (the input
    where it is an ``InputPath``) and ``outputs`` (the sampled input and the outputs of the
    layers solved before)."""
    fields, paths, internal, raw_columns = [], [], [], []
    # The adjoint differentiates the field with respect to the path's tensors and to the
    # weights: a path projected through weight_ih beforehand would count W_ih twice, so under
    # the adjoint the path holds the raw samples and the field projects them as it goes.
    project_first = not solve_kw.get("adjoint", False)
    for layer in group:
        field = model.field(layer, direction)
        cols = model.topology.columns(layer)
        inside = [(j, c) for j, c in cols.items() if j in group]
        outside = [(j, c) for j, c in cols.items() if j not in group]
        path, columns = None, None
        if input_path is not None and INPUT in dict(outside):
            if len(outside) > 1:
                raise ValueError(
                    f"x: an InputPath drives layer {layer}, which also reads the sampled outputs "
                    f"of layers {[j for j, _ in outside if j != INPUT]} (skips={model.skips}); "
                    "pass samples, or use coupling='continuous'"
                )
            columns = outside[0][1]
            path = _input_path(input_path, field, columns, project_first, direction == 1, unbatched)
        elif outside:
            # Sources solved before this ODE: project their samples once, then interpolate.
            # Their columns are contiguous: all sources (sampled) or the input (continuous).
            columns = slice(outside[0][1].start, outside[-1][1].stop)
            samples = torch.cat([outputs[j] for j, _ in outside], dim=-1)
            if detach:
                samples = samples.detach()
            # Shift the raw samples (causal), then project: the drive before t_1 is b_ih.
            kind, samples = as_held(interpolation, samples)
            u = field.project(samples, columns) if project_first else samples
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
    states0 = [h0[layer * model.num_directions + direction] for layer in group]
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
            assert isinstance(field, _Gated)  # check_call refuses return_gates without them
            values = field.gate_values(before[i], torch.stack([u[i] for u in steps]))
            gates.append({k: v.flip(0) if direction == 1 else v for k, v in values.items()})
    if direction == 1:
        states = tuple(s.flip(0) for s in states)
    return _Solved(tuple(states), nfe, gates)


def check_call(
    model: ODERNN, settings: SolveSettings, *, return_gates: bool, detach_layers: bool
) -> None:
    if settings.coupling == "continuous" and model.bidirectional and model.num_layers > 1:
        raise ValueError(
            "coupling: 'continuous' needs num_layers=1 when bidirectional=True (a deeper "
            "bidirectional stack coupled at every instant is not an initial-value problem); "
            f"got num_layers={model.num_layers}"
        )
    if settings.coupling == "continuous" and model.dropout and model.training:
        raise ValueError(
            f"coupling: 'continuous' has no layer outputs to drop; got dropout={model.dropout} "
            "in training mode (call .eval() or use coupling='sampled')"
        )
    if return_gates and not hasattr(model.layers[0], "gate_values"):
        raise ValueError(
            f"return_gates: expected a gated cell with gate_values (lstm), got cell={model.cell!r}"
        )
    if detach_layers and settings.coupling == "continuous" and model.num_layers > 1:
        raise ValueError(
            "detach_layers: layers coupled at every instant cannot be cut apart; expected "
            f"coupling='sampled', got coupling={settings.coupling!r}"
        )


def _check_path(model: ODERNN, path: InputPath) -> tuple[int, bool]:
    """The batch size of an input path, and whether it is unbatched."""
    dtype = model.layers[0].weight_ih.dtype
    times = path.times
    if not isinstance(times, torch.Tensor) or times.dim() != 1 or len(times) < 2:
        raise ValueError("x: expected an InputPath on (T + 1,) knot times with T >= 1")
    check_times("x.times", times, num_samples=len(times) - 1, dtype=dtype)
    value = path.evaluate(times[0])
    if value.dtype != dtype or value.dim() not in (1, 2) or value.shape[-1] != model.input_size:
        raise ValueError(
            f"x: expected a path whose evaluate(t) is (batch, input_size) or (input_size,) "
            f"with input_size={model.input_size} in {dtype}; got {tuple(value.shape)} in "
            f"{value.dtype}"
        )
    return (1, True) if value.dim() == 1 else (value.shape[0], False)


def check_inputs(model: ODERNN, x, hx):
    dtype = model.layers[0].weight_ih.dtype
    if isinstance(x, InputPath):
        batch, unbatched = _check_path(model, x)
        reference = x.times
    elif not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
        got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            "x: expected a tensor of rank 3, (T, batch, input_size) (or "
            "(batch, T, input_size) with batch_first), or rank 2, (T, input_size) "
            f"unbatched; got {got}"
        )
    else:
        unbatched = x.dim() == 2
        layout = (
            "(T, input_size)"
            if unbatched
            else ("(batch, T, input_size)" if model.batch_first else "(T, batch, input_size)")
        )
        shape = (None,) * (x.dim() - 1) + (model.input_size,)
        x = check_tensor("x", x, shape=shape, layout=layout, dtype=dtype)
        if unbatched:
            x = x.unsqueeze(1)
        elif model.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] < 1:
            raise ValueError("x: expected at least one time step, got T = 0")
        batch = x.shape[1]
        reference = x
    n = model.num_layers * model.num_directions
    parts = model.state_parts
    if hx is None:
        h0 = reference.new_zeros(n, batch, parts * model.hidden_size)
    else:
        given = (hx,) if parts == 1 else hx
        names = ("hx",) if parts == 1 else tuple(f"hx[{i}]" for i in range(parts))
        if parts > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != parts):
            names_0 = ", ".join(f"{p}_0" for p in model.layers[0].part_names)
            raise ValueError(
                f"hx: expected a tuple of {parts} tensors ({names_0}) for "
                f"cell={model.cell!r}, got {type(hx).__name__}"
            )
        shape = (n, model.hidden_size) if unbatched else (n, batch, model.hidden_size)
        lay = (
            "(D * num_layers, hidden_size)" if unbatched else "(D * num_layers, batch, hidden_size)"
        )
        checked = [
            check_tensor(name, h, shape=shape, layout=lay, dtype=dtype)
            for name, h in zip(names, given, strict=True)
        ]
        h0 = torch.cat([h.unsqueeze(1) if unbatched else h for h in checked], dim=-1)
    return x, h0, unbatched


def package(model: ODERNN, plan: _Plan, solved: _Solved) -> Solution:
    """The ``Solution``, in torch's layouts, from the stack's results."""
    H, unbatched = model.hidden_size, plan.unbatched
    # Forward directions end at t_T, reverse ones at t_0; (L * D, B, S) in torch's order.
    final = torch.stack(
        [s[d, -1 if d == 0 else 0] for s in solved.states for d in range(model.num_directions)]
    )
    parts = tuple(final[..., i * H : (i + 1) * H] for i in range(model.state_parts))
    output = plan.outputs[model.num_layers - 1]
    if unbatched:
        output = output.squeeze(1)
        parts = tuple(p.squeeze(1) for p in parts)
    elif model.batch_first:
        output = output.transpose(0, 1)
    gates = None
    if solved.gates is not None:
        gates = {k: torch.stack([g[k] for g in solved.gates]) for k in "ifgo"}  # (L,D,T,B,H)
        if unbatched:
            gates = {k: v.squeeze(3) for k, v in gates.items()}
    times = plan.grid.times
    if plan.grid.per_sample and model.batch_first:
        times = times.transpose(0, 1)
    return Solution(
        output,
        parts[0] if model.state_parts == 1 else parts,
        times,
        solved.nfe,
        H,
        gates=gates,
        stats=solved.stats,
        _layer_states=solved.states,
        _unbatched=unbatched,
        _probes=tuple(plan.probes),
        _topology=model.topology,
    )
