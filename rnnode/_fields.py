"""Vector fields of single recurrent layers: dh/dt = F(t, h, u).

Every field receives the *projected drive* ``u = W_ih x + b_ih`` (computed once for all sample
times, since projection commutes with interpolation) and its own state. The classic cells are
*relaxation fields*: with ``Phi`` the discrete cell's update map,

    dh/dt = (Phi(h, u) - h) / tau,

so one explicit Euler step of size ``tau`` is exactly the discrete cell ``h_k = Phi(h_{k-1}, u_k)``.
For the GRU this reads ``dh/dt = (1 - z) * (n - h) / tau``; for the LSTM the state is ``(h, c)``
and ``Phi`` is the LSTM update of both. Parameter names and layouts follow ``torch.nn``
(``weight_ih``: (G * hidden, input), ``weight_hh``: (G * hidden, hidden), ``bias_ih``, ``bias_hh``,
gates in torch's order) so that weights move 1:1.

State layout: a layer's state is one tensor of shape ``(..., state_size)`` with
``state_size = state_parts * hidden_size``; the hidden state ``h`` is always the first part
(LSTM: ``[h, c]``).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, ClassVar, overload

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_bool, check_choice, check_int, check_nonnegative, check_positive

__all__ = [
    "CELLS",
    "AntisymmetricField",
    "CoupledOscillatorField",
    "ElmanField",
    "GRUField",
    "LSTMField",
    "LinearField",
    "RelaxationField",
    "VectorField",
    "cell_of",
    "check_nonlinearity",
    "check_tau",
    "make_field",
]


def check_tau(name: str, tau: object, hidden_size: int) -> float | torch.Tensor:
    """A time constant: a positive finite number, or a (hidden_size,) tensor of them (per unit).

    Raises:
        TypeError: neither a real number nor a tensor (a 0-d tensor included: pass float(tau)).
        ValueError: a non-positive or non-finite value, or a tensor of another shape.
    """
    if isinstance(tau, torch.Tensor):
        if tau.dim() == 0:
            raise TypeError(
                f"{name}: expected a positive finite number or a ({hidden_size},) tensor (one "
                "per unit), got a 0-d tensor (pass float(tau))"
            )
        if tau.shape != (hidden_size,) or not tau.is_floating_point():
            raise ValueError(
                f"{name}: expected a positive finite number or a floating ({hidden_size},) "
                f"tensor (one per unit), got a {tau.dtype} tensor of shape {tuple(tau.shape)}"
            )
        tau = tau.detach()
        if tau.device.type != "meta" and not bool(((tau > 0) & torch.isfinite(tau)).all()):
            raise ValueError(f"{name}: expected a positive finite number per unit, got {tau}")
        return tau.to(torch.get_default_dtype()).clone()
    if not isinstance(tau, numbers.Real) or isinstance(tau, bool):
        raise TypeError(
            f"{name}: expected a positive finite number or a ({hidden_size},) tensor (one per "
            f"unit), got {tau!r}"
        )
    return check_positive(name, tau)


class VectorField(nn.Module):
    """Base class: the vector field of one layer, dh/dt = F(t, h, u).

    Arguments:
        input_size: features of the layer's input x.
        hidden_size: features of the hidden state h.
        bias: whether ``bias_ih`` and ``bias_hh`` exist.
        tau: time constant scaling the field: a positive number, or a (hidden_size,) tensor of
            one per unit (unit i's parts, h_i and for the LSTM c_i, are divided by tau_i).
        learn_tau: make ``tau`` a trainable parameter (kept positive as ``exp(log_tau)``).

    Subclasses set ``gates`` (rows of ``weight_ih`` per hidden unit), ``state_parts`` and
    implement ``forward(t, state, u)``. Every ``VectorField`` is a ``rnnode.fields.Field``.
    """

    gates: int = 1
    state_parts: int = 1
    #: Names of the state's parts, hidden part first (LSTM: h, c).
    part_names: tuple[str, ...] = ("h",)
    #: A bound B that the exact flow keeps the hidden part within, for every input:
    #: |h_i(t)| <= max(B, |h_i(0)|) (None: no such bound). The solver checks it after a
    #: fixed-step solve (a state outside it means the steps were unstable).
    hidden_bound: float | None = None
    #: Whether the stack may evaluate this field together with the other layers of its
    #: ``fusion_key`` as one block (``rnnode.fields.FusibleField``). Declared per class: a
    #: subclass that redefines ``forward``, ``output``, ``recurrent`` or ``project`` without
    #: declaring ``fusible`` again in its own body is not fusible.
    fusible: ClassVar[bool] = False

    #: Whether ``tau`` is the base class's (the ``fixed_tau`` buffer or ``log_tau``); a subclass
    #: that defines its own ``tau`` is never taken for a fixed tau = 1 (``_unit_tau``).
    _own_tau: ClassVar[bool] = True

    # The parameters and the buffer that __init__ registers (bias_* are None without a bias).
    weight_ih: nn.Parameter
    weight_hh: nn.Parameter
    bias_ih: nn.Parameter | None
    bias_hh: nn.Parameter | None
    log_tau: nn.Parameter
    fixed_tau: torch.Tensor

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        rate = ("forward", "output", "recurrent", "project")
        if "fusible" not in cls.__dict__ and any(name in cls.__dict__ for name in rate):
            cls.fusible = False
        if "tau" in cls.__dict__:
            cls._own_tau = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        tau: float | torch.Tensor = 1.0,
        learn_tau: bool = False,
    ):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        tau = check_tau("tau", tau, self.hidden_size)
        learn_tau = check_bool("learn_tau", learn_tau)
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows))
            self.bias_hh = nn.Parameter(torch.empty(rows))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.learn_tau = learn_tau
        if learn_tau:
            log_tau = tau.log() if isinstance(tau, torch.Tensor) else torch.tensor(math.log(tau))
            self.log_tau = nn.Parameter(log_tau)
        else:
            # Stored as given, so a fixed tau is exact (tau = 1 divides nothing away).
            fixed = tau if isinstance(tau, torch.Tensor) else torch.tensor(float(tau))
            self.register_buffer("fixed_tau", fixed)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's initialisation: every weight and bias uniform on (-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            p = getattr(self, name)
            if p is not None:
                nn.init.uniform_(p, -bound, bound)

    @property
    def _unit_tau(self) -> bool:
        """Whether tau is a fixed 1, so that the field may skip the division (exact either way).

        Read from the ``fixed_tau`` buffer as it is now, not as it was at construction: loading
        a state dict, ``copy_`` or ``.to()`` change the buffer, and the answer follows. The float
        is read from the buffer only when the buffer changed (its identity or version counter),
        so the hot path costs no device synchronisation.
        """
        if self.learn_tau or not self._own_tau:
            return False
        buffer = self.fixed_tau
        try:
            version = buffer._version
        except RuntimeError:  # an inference-mode tensor has no version counter: read it
            return bool((buffer == 1.0).all())
        seen = self.__dict__.get("_unit_tau_seen")
        if seen is None or seen[0] is not buffer or seen[1] != version:
            seen = (buffer, version, bool((buffer == 1.0).all()))
            self.__dict__["_unit_tau_seen"] = seen
        return seen[2]

    @property
    def tau(self) -> torch.Tensor:
        """The time constant: a 0-d tensor, or (hidden,) with one per unit."""
        return self.log_tau.exp() if self.learn_tau else self.fixed_tau

    @property
    def state_size(self) -> int:
        """Features of the state: ``state_parts * hidden_size``."""
        return self.state_parts * self.hidden_size

    def _per_tau(self, rate: torch.Tensor) -> torch.Tensor:
        """rate / tau, a per-unit tau dividing every part of unit i (h_i, c_i) by tau_i."""
        if self._unit_tau:
            return rate
        tau = self.tau
        if tau.dim() and self.state_parts > 1:
            tau = tau.repeat(self.state_parts)
        return rate / tau

    def fusion_key(self) -> Hashable:
        """Fields with equal keys (and ``fusible``) are evaluated as one block by the stack:
        the same class, hidden size, state parts, nonlinearity and biases."""
        return (
            type(self),
            self.hidden_size,
            self.state_parts,
            getattr(self, "nonlinearity", None),
            self.bias_hh is not None,
            self.bias_ih is not None,
        )

    def project(self, x: torch.Tensor, columns: slice | None = None, bias: bool = True):
        """The drive ``W_ih[:, columns] x (+ b_ih)``: (..., len(columns)) -> (..., G * hidden)."""
        weight = self.weight_ih if columns is None else self.weight_ih[:, columns]
        return F.linear(x, weight, self.bias_ih if bias else None)

    def output(self, state: torch.Tensor) -> torch.Tensor:
        """The hidden state h (the first part of the state): (..., state_size) -> (..., hidden)."""
        return state if self.state_parts == 1 else state[..., : self.hidden_size]

    def forward(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decay_rate(self) -> torch.Tensor | None:
        """The fastest rate of the field's leak -h/tau, 1 / min(tau), a 0-d tensor (None: the
        field has no leak). The solver compares fixed steps with it before solving."""
        return None


if TYPE_CHECKING:

    class FieldList(nn.ModuleList):
        """An ``nn.ModuleList`` of ``VectorField`` as the type checker sees it (torch's
        ``ModuleList`` is not generic); at run time ``FieldList`` is ``nn.ModuleList`` itself."""

        @overload
        def __getitem__(self, idx: slice) -> FieldList: ...

        @overload
        def __getitem__(self, idx: int) -> VectorField: ...

        def __getitem__(self, idx: int | slice) -> VectorField | FieldList: ...

        def __iter__(self) -> Iterator[VectorField]: ...

else:
    FieldList = nn.ModuleList


class RelaxationField(VectorField):
    """dh/dt = (Phi(h, u) - h) / tau, where Phi is a discrete cell's update map.

    Fusible (``rnnode.fields.FusibleField``): the rate is ``relaxation_rate(state, u,
    recurrent(output(state))) / tau`` with ``recurrent(h) = W_hh h + b_hh``, so the stack may
    evaluate several layers of one cell as one block.
    """

    fusible = True

    def decay_rate(self) -> torch.Tensor | None:
        return 1.0 / self.tau.detach().min()

    def update(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The discrete cell's map Phi(h, u), same shape as ``state``."""
        raise NotImplementedError

    def forward(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """dh/dt = relaxation_rate(state, u, recurrent(h)) / tau: (..., state_size)."""
        return self._per_tau(self.relaxation_rate(state, u, self.recurrent(self.output(state))))

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor:
        """Phi(h, u) - h from the drive u and the recurrent product ``W_hh h + b_hh``.

        Elementwise in everything but the last dimension, so that a stack of layers of one cell
        evaluates it once on the stacked (layers, ..., features) blocks.
        """
        raise NotImplementedError

    def recurrent(self, h: torch.Tensor) -> torch.Tensor:
        """The recurrent product ``W_hh h + b_hh``: (..., hidden) -> (..., G * hidden)."""
        return F.linear(h, self.weight_hh, self.bias_hh)


_NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


class ElmanField(RelaxationField):
    """Elman field: dh/dt = (-h + sigma(W_ih x + b_ih + W_hh h + b_hh)) / tau, sigma tanh or relu.

    Euler with step tau is ``torch.nn.RNN``'s cell.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        tau: float | torch.Tensor = 1.0,
        learn_tau: bool = False,
        nonlinearity: str = "tanh",
    ):
        check_choice("nonlinearity", nonlinearity, tuple(_NONLINEARITIES))
        super().__init__(input_size, hidden_size, bias, tau, learn_tau)
        self.nonlinearity = nonlinearity
        self._sigma = _NONLINEARITIES[nonlinearity]
        # dh/dt < 0 wherever h > 1 (tanh < 1), > 0 wherever h < -1.
        self.hidden_bound = 1.0 if nonlinearity == "tanh" else None

    def update(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self._sigma(u + self.recurrent(state))

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor:
        return self._sigma(u + recurrent) - state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class LinearField(RelaxationField):
    """Linear field: dh/dt = A h + B x + b, with A = (W_hh - I) / tau, B = W_ih / tau and
    b = (b_ih + b_hh) / tau.

    Euler with step tau = 1 gives the linear recurrence ``h_k = W_hh h_{k-1} + W_ih x_k + b``.
    """

    def update(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u + self.recurrent(state)

    def decay_rate(self) -> torch.Tensor | None:
        # Its rates are the eigenvalues of A = (W_hh - I) / tau, which W_hh may move anywhere:
        # no saturation ever leaves the leak 1/tau alone, as it does in the bounded cells.
        return None

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor:
        return (u + recurrent) - state

    @property
    def A(self) -> torch.Tensor:
        """State matrix (hidden, hidden)."""
        eye = torch.eye(self.hidden_size, dtype=self.weight_hh.dtype, device=self.weight_hh.device)
        return (self.weight_hh - eye) / _rows(self.tau)

    @property
    def B(self) -> torch.Tensor:
        """Input matrix (hidden, input)."""
        return self.weight_ih / _rows(self.tau)


class GRUField(RelaxationField):
    """GRU field: dh/dt = (1 - z) * (n - h) / tau, with torch's gates (r, z, n):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). Euler with step tau is ``torch.nn.GRU``'s cell.
    """

    gates = 3
    hidden_bound = 1.0  # dh/dt = (1 - z) (n - h) with |n| < 1 and 1 - z > 0

    def update(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return state + self.relaxation_rate(state, u, self.recurrent(state))

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor:
        # (1 - z) * (n - h) directly, rather than Phi - h, so no cancellation error is added.
        h = state
        ur, uz, un = u.chunk(3, dim=-1)
        wr, wz, wn = recurrent.chunk(3, dim=-1)
        r = torch.sigmoid(ur + wr)
        z = torch.sigmoid(uz + wz)
        n = torch.tanh(un + r * wn)
        return (1 - z) * (n - h)


class LSTMField(RelaxationField):
    """LSTM field on the state (h, c): d(h, c)/dt = ((o * tanh(c+), c+) - (h, c)) / tau with
    c+ = f * c + i * g and torch's gates (i, f, g, o).

    Euler with step tau is ``torch.nn.LSTM``'s cell. ``gate_values`` returns the gates.
    """

    gates = 4
    state_parts = 2
    part_names = ("h", "c")
    hidden_bound = 1.0  # dh/dt = (o tanh(c+) - h) / tau with |o tanh(c+)| < 1 (c is unbounded)

    def gate_values(self, state: torch.Tensor, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gates i, f, g, o, each (..., hidden), at the given state and drive."""
        return self._gates(u + self.recurrent(self.output(state)))

    @staticmethod
    def _gates(preactivation: torch.Tensor) -> dict[str, torch.Tensor]:
        i, f, g, o = preactivation.chunk(4, dim=-1)
        return {
            "i": torch.sigmoid(i),
            "f": torch.sigmoid(f),
            "g": torch.tanh(g),
            "o": torch.sigmoid(o),
        }

    def update(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self._next(state, u, self.recurrent(self.output(state)))

    def relaxation_rate(
        self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor
    ) -> torch.Tensor:
        return self._next(state, u, recurrent) - state

    def _next(self, state: torch.Tensor, u: torch.Tensor, recurrent: torch.Tensor) -> torch.Tensor:
        gates = self._gates(u + recurrent)
        c = state[..., self.hidden_size :]
        c_next = gates["f"] * c + gates["i"] * gates["g"]
        return torch.cat([gates["o"] * torch.tanh(c_next), c_next], dim=-1)


def _rows(tau: torch.Tensor) -> torch.Tensor:
    """tau shaped to divide the rows of a (hidden, ...) matrix (a per-unit tau row by row)."""
    return tau.unsqueeze(-1) if tau.dim() else tau


_CELL_FIELDS: dict[str, type[VectorField]] = {
    "rnn": ElmanField,
    "gru": GRUField,
    "lstm": LSTMField,
    "linear": LinearField,
}


def check_nonlinearity(cell: str, nonlinearity: object) -> str | None:
    """The nonlinearity of ``cell`` (one of ``CELLS``): for ``"rnn"`` one of ``"tanh"`` (the
    default, for None) and ``"relu"``; None for every other cell, whose nonlinearities are fixed.

    Raises:
        ValueError: an unknown cell or nonlinearity, or a nonlinearity given for another cell.
    """
    check_choice("cell", cell, CELLS)
    if cell == "rnn":
        nonlinearity = "tanh" if nonlinearity is None else nonlinearity
        check_choice("nonlinearity", nonlinearity, tuple(_NONLINEARITIES))
        return nonlinearity  # type: ignore[return-value]
    if nonlinearity is not None:
        raise ValueError(
            f"nonlinearity: applies to cell='rnn' only; got nonlinearity={nonlinearity!r} with "
            f"cell={cell!r} (whose nonlinearities are fixed)"
        )
    return None


def make_field(
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    nonlinearity: str | None = None,
    bias: bool = True,
    tau: float | torch.Tensor = 1.0,
    learn_tau: bool = False,
    **options: float,
) -> VectorField:
    """Build the vector field of the named cell (one of ``CELLS``).

    ``nonlinearity`` (``"tanh"``, the default, or ``"relu"``) belongs to ``cell="rnn"`` only;
    ``options`` are the cell's own coefficients (``gamma`` of ``"antisymmetric"``; ``gamma``
    and ``epsilon`` of ``"cornn"``).

    Raises:
        ValueError: an unknown cell, a ``nonlinearity`` given for another cell than ``"rnn"``,
            or options the cell does not take.
    """
    nonlinearity = check_nonlinearity(cell, nonlinearity)
    common = {"self", "input_size", "hidden_size", "bias", "tau", "learn_tau", "nonlinearity"}
    known = set(inspect.signature(_CELL_FIELDS[cell].__init__).parameters) - common
    if set(options) - known:
        raise ValueError(
            f"cell_options: cell={cell!r} takes {sorted(known) or 'no options'}, "
            f"got {sorted(options)}"
        )
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    return _CELL_FIELDS[cell](
        input_size, hidden_size, bias=bias, tau=tau, learn_tau=learn_tau, **kwargs, **options
    )


class AntisymmetricField(VectorField):
    """Antisymmetric RNN field (Chang et al. 2019):

        dh/dt = tanh((W - W^T - gamma I) h + V x + b) / tau.

    ``weight_ih`` is V, ``weight_hh`` is W and b = ``bias_ih + bias_hh``. For gamma = 0 the
    Jacobian diag(tanh') (W - W^T) is similar to an antisymmetric matrix at every state, so its
    eigenvalues are purely imaginary: the dynamics neither explode nor vanish along any direction
    to first order. gamma > 0 adds a small diffusion that keeps explicit Euler stable.

    Arguments:
        input_size, hidden_size, bias, tau, learn_tau: as ``VectorField``.
        gamma: diffusion (non-negative; Chang et al. use 0.01).

    Notes:
        Unlike the relaxation cells, Euler with step 1 is not a torch.nn cell; Chang et al.
        step with a small epsilon (``step_size``) instead.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        tau: float | torch.Tensor = 1.0,
        learn_tau: bool = False,
        gamma: float = 0.01,
    ):
        gamma = check_nonnegative("gamma", gamma)
        super().__init__(input_size, hidden_size, bias, tau, learn_tau)
        self.gamma = gamma

    @property
    def recurrent_matrix(self) -> torch.Tensor:
        """W - W^T - gamma I, (hidden, hidden)."""
        W = self.weight_hh
        eye = torch.eye(self.hidden_size, dtype=W.dtype, device=W.device)
        return W - W.T - self.gamma * eye

    def forward(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        rate = torch.tanh(u + F.linear(state, self.recurrent_matrix, self.bias_hh))
        return self._per_tau(rate)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, gamma={self.gamma}"


class CoupledOscillatorField(VectorField):
    """Coupled oscillatory RNN (coRNN, Rusch & Mishra 2021) as a first-order field in (y, z = y'):

        dy/dt = z / tau,
        dz/dt = (tanh(W y + W' z + V x + b) - gamma y - eps z) / tau.

    ``weight_ih`` is V, ``weight_hh`` is W, ``weight_hz`` is W' (hidden, hidden) and
    b = ``bias_ih + bias_hh``. The state is ``[y, z]`` (``state_parts = 2``); the hidden state
    (the layer's output) is y. tau rescales time, s = t / tau, so z = dy/ds = tau dy/dt.
    The energy E = (gamma |y|^2 + |z|^2) / 2 obeys dE/dt = (z . tanh(...) - eps |z|^2) / tau
    <= hidden / (4 eps tau), so states grow at most like sqrt(t) whatever the weights: the bound
    behind the cell's stable gradients.

    Arguments:
        input_size, hidden_size, bias, tau, learn_tau: as ``VectorField``.
        gamma: stiffness of the oscillators (positive).
        epsilon: damping of the oscillators (positive).
    """

    state_parts = 2
    part_names = ("y", "z")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        tau: float | torch.Tensor = 1.0,
        learn_tau: bool = False,
        gamma: float = 1.0,
        epsilon: float = 1.0,
    ):
        gamma = check_positive("gamma", gamma)
        epsilon = check_positive("epsilon", epsilon)
        super().__init__(input_size, hidden_size, bias, tau, learn_tau)
        self.gamma = gamma
        self.epsilon = epsilon
        self.weight_hz = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self._reset_weight_hz()

    def reset_parameters(self) -> None:
        """torch.nn's initialisation of every weight and bias, ``weight_hz`` included."""
        super().reset_parameters()
        if "weight_hz" in self._parameters:  # absent while the base constructor runs
            self._reset_weight_hz()

    def _reset_weight_hz(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight_hz, -bound, bound)

    def forward(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y, z = state.split(self.hidden_size, dim=-1)
        drive = torch.tanh(
            u + F.linear(y, self.weight_hh, self.bias_hh) + F.linear(z, self.weight_hz)
        )
        rate = torch.cat([z, drive - self.gamma * y - self.epsilon * z], dim=-1)
        return self._per_tau(rate)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, gamma={self.gamma}, epsilon={self.epsilon}"


_CELL_FIELDS["antisymmetric"] = AntisymmetricField
_CELL_FIELDS["cornn"] = CoupledOscillatorField

from ._ltc import LTCField  # noqa: E402  (it subclasses VectorField, defined above)

_CELL_FIELDS["ltc"] = LTCField

#: The cell names ``ODERNN`` and ``make_field`` accept.
CELLS: tuple[str, ...] = tuple(_CELL_FIELDS)


def cell_of(field: object) -> str | None:
    """The name in ``CELLS`` of a field of exactly that cell's class, else None."""
    for name, cls in _CELL_FIELDS.items():
        if type(field) is cls:
            return name
    return None
