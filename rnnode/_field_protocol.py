"""What a layer's vector field provides to the stack: the ``Field`` protocol, the ``FusibleField``
capability, and ``check_field``, which checks a field against both once, numerically.

A field is the vector field of one layer, dh/dt = F(t, h, u), evaluated on the layer's *projected
drive* u = W_ih [sources] + b_ih. The stack (``rnnode.ODERNN``) and ``rnnode.analysis`` use only
the members listed in ``Field``; a stack of fields that are also ``FusibleField`` (and declare it)
is evaluated, in continuous coupling, as one block-structured operation (``rnnode._block``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar, Protocol, cast, runtime_checkable

import torch
from torch import nn

__all__ = ["Field", "FusibleField", "check_field"]


@runtime_checkable
class Field(Protocol):
    """The vector field of one layer, dh/dt = F(t, h, u) (an ``nn.Module``).

    Attributes:
        input_size: columns of ``weight_ih``: the features of the layer's sources together.
        hidden_size: features of the hidden state h (the layer's output).
        state_parts: parts of the state (1; 2 for the LSTM's (h, c)); the state has
            ``state_size = state_parts * hidden_size`` features, h first.
        part_names: names of the parts, h first (for messages: ``("h", "c")``).
        weight_ih: (rows, input_size) the drive's weights (rows = G * hidden_size for the
            built-in cells; any number for a field of one's own); the stack reads its columns to
            wire layers of one ODE together, and its dtype and device as the layer's.
        bias_ih: (rows,) the drive's bias, or None.
        state_size: ``state_parts * hidden_size``.
        tau: the time constant, a 0-d tensor or (hidden_size,) per unit (read by the bridge,
            by ``to_torch`` and by the stability checks; the rate already includes it).

    Methods:
        __call__(t, state, u): the rate dh/dt, (..., state_size), at the 0-d time t, the state
            (..., state_size) and the projected drive u (..., rows).
        project(x, columns=None, bias=True): the drive ``W_ih[:, columns] x (+ b_ih)``,
            (..., len(columns)) -> (..., rows), exactly ``F.linear(x, weight_ih[:, columns],
            bias_ih if bias else None)``: the stack projects samples once and interpolates the
            projections, and adds the columns reading other layers of one ODE itself.
        output(state): the hidden state h, (..., state_size) -> (..., hidden_size): what the
            layer's successors read and the stack returns.

    Optional members, read where present: ``decay_rate()`` (the fastest leak rate 1 / min tau,
    a 0-d tensor, or None: fixed steps beyond the method's stability limit for it are refused
    before solving), ``hidden_bound`` (a bound B the exact flow keeps |h| within, or None:
    states beyond it after a fixed-step solve raise ``rnnode.DivergenceError``) and
    ``gate_values(state, u)`` (``solve(return_gates=True)``).
    """

    # Read-only (properties), so that an attribute of a subtype (an nn.Parameter) fulfils them.
    @property
    def input_size(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    @property
    def state_parts(self) -> int: ...

    @property
    def part_names(self) -> tuple[str, ...]: ...

    @property
    def weight_ih(self) -> torch.Tensor: ...

    @property
    def bias_ih(self) -> torch.Tensor | None: ...

    @property
    def state_size(self) -> int: ...

    @property
    def tau(self) -> torch.Tensor: ...

    def __call__(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor: ...

    def project(
        self, x: torch.Tensor, columns: slice | None = None, bias: bool = True
    ) -> torch.Tensor: ...

    def output(self, state: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FusibleField(Field, Protocol):
    """A field that layers of its kind may evaluate together as one block: a relaxation field.

    The rate must be ``relaxation_rate(state, u, recurrent(output(state))) / tau`` (a per-unit
    tau dividing every part of unit i), with ``recurrent(h) = h W_hh^T + b_hh`` and ``output``
    the first ``hidden_size`` features of the state; ``relaxation_rate`` must act elementwise
    in every dimension but the last, so that it applies to (layers, batch, features) blocks.
    Layers whose fields declare ``fusible = True`` and have equal ``fusion_key()`` are stacked
    into one block. ``check_field`` verifies the contract numerically; ``rnnode.RelaxationField``
    subclasses fulfil it by construction (a subclass that redefines ``forward``, ``output``,
    ``recurrent`` or ``project`` loses the declaration unless it makes it again).

    Attributes:
        fusible: the declared capability (a class attribute).
        weight_hh: (G * hidden_size, hidden_size); bias_hh: (G * hidden_size,) or None.
    """

    fusible: ClassVar[bool]

    @property
    def weight_hh(self) -> torch.Tensor: ...

    @property
    def bias_hh(self) -> torch.Tensor | None: ...

    def fusion_key(self) -> Hashable: ...

    def recurrent(self, h: torch.Tensor) -> torch.Tensor: ...

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor: ...


def declares_fusion(field: object) -> bool:
    """Whether ``field`` declares the fusion capability; a declaration without the members is
    refused (TypeError) rather than silently ignored."""
    if getattr(field, "fusible", False) is not True:
        return False
    if not isinstance(field, FusibleField):
        missing = [
            name
            for name in ("weight_hh", "bias_hh", "fusion_key", "recurrent", "relaxation_rate")
            if not hasattr(field, name)
        ]
        raise TypeError(
            f"field: {type(field).__name__} declares fusible=True but lacks {missing} of "
            "rnnode.fields.FusibleField"
        )
    return True


#: The members of ``Field`` (what ``isinstance(field, Field)`` checks), for the messages.
_FIELD_MEMBERS = (
    "input_size",
    "hidden_size",
    "state_parts",
    "part_names",
    "weight_ih",
    "bias_ih",
    "state_size",
    "tau",
    "project",
    "output",
)


def check_field(field: object, name: str = "field") -> None:
    """Check that ``field`` is a ``Field`` (and, where it declares fusion, a ``FusibleField``).

    Evaluates it once on a small random state and drive (a private generator; the global
    random state is untouched): the shapes of ``project``, ``output`` and the rate, that
    ``project`` is the affine map of ``weight_ih`` and ``bias_ih``, and for a
    fusible field that the rate equals ``relaxation_rate(state, u, recurrent(h)) / tau`` and
    that ``relaxation_rate`` of two stacked copies is the two rates (to 100 ulp of the dtype).
    Fields on the ``meta`` device are checked for their members only.

    Raises:
        TypeError: not an ``nn.Module``, or a member of the protocol missing.
        ValueError: a shape or a fusion identity that does not hold.
    """
    if not isinstance(field, nn.Module):
        raise TypeError(f"{name}: expected an nn.Module field, got {type(field).__name__}")
    if not isinstance(field, Field):
        raise TypeError(
            f"{name}: {type(field).__name__} lacks "
            f"{[n for n in _FIELD_MEMBERS if not hasattr(field, n)]} of rnnode.fields.Field"
        )
    fusible = declares_fusion(field)
    field = cast(FusibleField, field)  # checked above; the fusion members only where fusible
    weight = field.weight_ih
    if weight.device.type == "meta":
        return
    H, S, G = field.hidden_size, field.state_size, weight.shape[0]
    if S != field.state_parts * H:
        raise ValueError(
            f"{name}: state_size {S} is not state_parts * hidden_size = {field.state_parts * H}"
        )
    if tuple(weight.shape) != (G, field.input_size):
        raise ValueError(
            f"{name}: weight_ih has shape {tuple(weight.shape)}, expected (rows, input_size) "
            f"with input_size={field.input_size}"
        )
    tau = field.tau
    if tau.dim() and tuple(tau.shape) != (H,):
        raise ValueError(f"{name}: tau has shape {tuple(tau.shape)}, expected () or ({H},)")
    generator = torch.Generator(device="cpu").manual_seed(0)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=weight.dtype).to(weight.device)

    with torch.no_grad():
        x, state = draw(3, field.input_size), draw(3, S)
        t = torch.zeros((), dtype=weight.dtype, device=weight.device)
        u = field.project(x)
        if tuple(u.shape) != (3, G):
            raise ValueError(f"{name}: project gave shape {tuple(u.shape)}, expected (3, {G})")
        ulp = 100 * torch.finfo(weight.dtype).eps
        affine = torch.nn.functional.linear(x, weight, field.bias_ih)
        if not torch.allclose(u, affine, rtol=ulp, atol=ulp):
            raise ValueError(f"{name}: project(x) differs from x W_ih^T + b_ih")
        h = field.output(state)
        if tuple(h.shape) != (3, H):
            raise ValueError(f"{name}: output gave shape {tuple(h.shape)}, expected (3, {H})")
        rate = field(t, state, u)
        if tuple(rate.shape) != (3, S):
            raise ValueError(f"{name}: the rate has shape {tuple(rate.shape)}, expected (3, {S})")
        if not fusible:
            return
        if not torch.equal(h, state[..., :H]):
            raise ValueError(f"{name}: declares fusible=True, but output is not state[..., :H]")
        rec = field.recurrent(h)
        scale = tau if not tau.dim() else tau.repeat(field.state_parts)
        fused = field.relaxation_rate(state, u, rec) / scale
        stacked = field.relaxation_rate(
            torch.stack([state, 2 * state]),
            torch.stack([u, -u]),
            torch.stack([rec, field.recurrent(2 * h)]),
        )
        alone = field.relaxation_rate(2 * state, -u, field.recurrent(2 * h))
        linear = torch.nn.functional.linear(h, field.weight_hh, field.bias_hh)
        for what, a, b in (
            ("recurrent(h) differs from h W_hh^T + b_hh", rec, linear),
            ("the rate differs from relaxation_rate(state, u, recurrent(h)) / tau", rate, fused),
            ("relaxation_rate is not elementwise over leading dimensions", stacked[1], alone),
        ):
            if not torch.allclose(a, b, rtol=ulp, atol=ulp):
                raise ValueError(f"{name}: declares fusible=True, but {what}")
