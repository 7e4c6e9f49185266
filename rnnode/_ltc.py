"""The liquid time-constant (LTC) field (Hasani, Lechner, Amini, Rus & Grosu, AAAI 2021).

Each unit i of a layer is a leaky membrane with conductance-based synapses,

    cm_i dv_i/dt = -gleak_i (v_i - vleak_i)
                   - sum_j w_ji s(v_j; mu_ji, sigma_ji) mask_ji (v_i - erev_ji)
                   - sum_k w^s_ki s(x_k; mu^s_ki, sigma^s_ki) mask^s_ki (v_i - erev^s_ki),

with s(v; mu, sigma) = sigmoid(sigma (v - mu)) and x = input_w * u + input_b the input after the
input mapping. Grouping the terms, ``cm dv/dt = numerator - denominator * v`` with

    numerator = gleak vleak + sum_j w_ji s_ji erev_ji + sum_k w^s_ki s^s_ki erev^s_ki,
    denominator = gleak + sum_j w_ji s_ji + sum_k w^s_ki s^s_ki,

the *conductance form* (``LTCField.conductances``) that the fused semi-implicit step of ncps
(``method="ltc_fused"``, ``rnnode._semi_implicit``) needs. Parameter names, shapes (``w[j, i]``:
synapse from unit j to unit i) and positivity follow ``ncps.torch.LTCCell``: with
``implicit_param_constraints`` the stored ``w``, ``sensory_w``, ``cm`` and ``gleak`` pass through
softplus, otherwise they are used as stored (ncps then clips them at zero after each optimizer
step, ``apply_weight_constraints``). The sparsity masks (``sparsity_mask``,
``sensory_sparsity_mask``: 0/1, from an ncps wiring) are buffers.

A layer's hidden state is the whole membrane potential v (``hidden_size`` units); the *output
mapping* (the first ``motor_size`` units, times ``output_w``, plus ``output_b``) is ``readout``,
applied by ``rnnode.LTC`` to the top layer; inside a stack every layer reads the full v of its
sources through its own input mapping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._fields import VectorField
from ._validate import check_bool, check_choice, check_int, check_positive

__all__ = ["MAPPINGS", "LTCField"]

#: The input and output mappings of ncps: x * w + b, x * w, or x.
MAPPINGS: tuple[str, ...] = ("affine", "linear", "none")

#: ncps's initialisation ranges (uniform), LTCCell._init_ranges.
_INIT_RANGES = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}

#: The parameters kept positive (by softplus, or by clipping).
POSITIVE = ("w", "sensory_w", "cm", "gleak")


def _mapping(name: str, value: object) -> str:
    if value is None:
        return "none"
    return check_choice(name, value, MAPPINGS)


def _mask(name: str, value: object, shape: tuple[int, int]) -> torch.Tensor | None:
    if value is None:
        return None
    tensor = torch.as_tensor(value, dtype=torch.get_default_dtype())
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(tensor.shape)}")
    return tensor.detach().clone()


class LTCField(VectorField):
    """The LTC field of one layer (see the module docstring for the equation).

    Arguments:
        input_size: features of the layer's input (the sensory neurons).
        hidden_size: units of the layer (the state v).
        bias, tau, learn_tau: ``ODERNN``'s common arguments; the LTC's time scales are its
            own (``cm`` over the conductances), so only ``tau=1`` without ``learn_tau`` is
            accepted, and ``bias`` must be True (the input mapping says whether there is one).
        input_mapping: ``"affine"`` (x * input_w + input_b), ``"linear"`` (x * input_w) or
            ``"none"``; elementwise, as ncps.
        output_mapping: the same for ``readout``.
        motor_size: units read out by ``readout`` (the first ones; default all).
        implicit_param_constraints: softplus on ``w``, ``sensory_w``, ``cm``, ``gleak`` (True,
            ``ncps.torch.LTC``'s default) or none (``LTCCell``'s default).
        epsilon: added to the fused step's denominator (ncps's 1e-8).
        sparsity_mask, sensory_sparsity_mask: (hidden, hidden) and (input, hidden) 0/1 masks
            (default all ones: fully connected).
        erev, sensory_erev: initial reversal potentials (default: polarity -1 or +1 drawn
            with probabilities 1/3 and 2/3 as ncps's ``FullyConnected``, from torch's
            generator).

    Shapes: ``forward(t, v, u)``: v (..., hidden), u (..., input) the *projected* drive
    (``project``, the input mapping) -> dv/dt (..., hidden).
    """

    state_parts = 1
    part_names = ("h",)
    # Registered in ``__init__`` (parameters, and the masks as buffers); declared for the checker.
    gleak: torch.Tensor
    vleak: torch.Tensor
    cm: torch.Tensor
    sigma: torch.Tensor
    mu: torch.Tensor
    w: torch.Tensor
    erev: torch.Tensor
    sensory_sigma: torch.Tensor
    sensory_mu: torch.Tensor
    sensory_w: torch.Tensor
    sensory_erev: torch.Tensor
    sparsity_mask: torch.Tensor
    sensory_sparsity_mask: torch.Tensor
    input_w: torch.Tensor | None
    input_b: torch.Tensor | None
    output_w: torch.Tensor | None
    output_b: torch.Tensor | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        tau: float = 1.0,
        learn_tau: bool = False,
        *,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        motor_size: int | None = None,
        implicit_param_constraints: bool = True,
        epsilon: float = 1e-8,
        sparsity_mask: torch.Tensor | None = None,
        sensory_sparsity_mask: torch.Tensor | None = None,
        erev: torch.Tensor | None = None,
        sensory_erev: torch.Tensor | None = None,
    ):
        nn.Module.__init__(self)  # the LTC has none of VectorField's weight matrices
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        if not check_bool("bias", bias):
            raise ValueError(
                "bias: cell='ltc' has no bias of its own (input_mapping='linear' or 'none' "
                "drops input_b); expected True, got False"
            )
        if check_positive("tau", tau) != 1.0 or check_bool("learn_tau", learn_tau):
            raise ValueError(
                "tau: the LTC's time scales are its own (cm over the conductances); expected "
                f"tau=1 and learn_tau=False, got tau={tau!r}, learn_tau={learn_tau!r}"
            )
        self.learn_tau = False
        self.register_buffer("fixed_tau", torch.tensor(1.0))
        self.input_mapping = _mapping("input_mapping", input_mapping)
        self.output_mapping = _mapping("output_mapping", output_mapping)
        self.motor_size = (
            hidden_size if motor_size is None else check_int("motor_size", motor_size, minimum=1)
        )
        if self.motor_size > hidden_size:
            raise ValueError(
                f"motor_size: expected at most hidden_size = {hidden_size}, got {motor_size}"
            )
        self.implicit_param_constraints = check_bool(
            "implicit_param_constraints", implicit_param_constraints
        )
        self.epsilon = float(epsilon)
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon: expected a finite number >= 0, got {epsilon!r}")
        H, I = hidden_size, input_size
        for name, shape in (
            ("gleak", (H,)),
            ("vleak", (H,)),
            ("cm", (H,)),
            ("sigma", (H, H)),
            ("mu", (H, H)),
            ("w", (H, H)),
            ("erev", (H, H)),
            ("sensory_sigma", (I, H)),
            ("sensory_mu", (I, H)),
            ("sensory_w", (I, H)),
            ("sensory_erev", (I, H)),
        ):
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        for name, value, shape in (
            ("sparsity_mask", sparsity_mask, (H, H)),
            ("sensory_sparsity_mask", sensory_sparsity_mask, (I, H)),
        ):
            mask = _mask(name, value, shape)
            self.register_buffer(name, torch.ones(shape) if mask is None else mask)
        for prefix, size, mapping in (
            ("input", I, self.input_mapping),
            ("output", self.motor_size, self.output_mapping),
        ):
            if mapping in ("affine", "linear"):
                self.register_parameter(f"{prefix}_w", nn.Parameter(torch.ones(size)))
            else:
                self.register_parameter(f"{prefix}_w", None)
            if mapping == "affine":
                self.register_parameter(f"{prefix}_b", nn.Parameter(torch.zeros(size)))
            else:
                self.register_parameter(f"{prefix}_b", None)
        self.reset_parameters()
        with torch.no_grad():
            for name, value in (("erev", erev), ("sensory_erev", sensory_erev)):
                if value is not None:
                    given = _mask(name, value, tuple(getattr(self, name).shape))
                    getattr(self, name).copy_(given)

    def reset_parameters(self) -> None:
        """ncps's initialisation: uniform on its ranges, reversal potentials -1 (p = 1/3) or +1,
        mappings the identity."""
        with torch.no_grad():
            for name, (low, high) in _INIT_RANGES.items():
                getattr(self, name).uniform_(low, high)
            for name in ("erev", "sensory_erev"):
                p = getattr(self, name)
                p.copy_(torch.where(torch.rand_like(p) < 1 / 3, -1.0, 1.0))
            for name in ("input_w", "output_w"):
                if getattr(self, name) is not None:
                    getattr(self, name).fill_(1.0)
            for name in ("input_b", "output_b"):
                if getattr(self, name) is not None:
                    getattr(self, name).zero_()

    # -- the drive: ncps's input mapping ------------------------------------------------------

    @property
    def weight_ih(self) -> torch.Tensor:  # type: ignore[override]  # derived, not stored
        """The input mapping as a matrix, diag(input_w) (the identity for ``"none"``):
        (input, input). ``project`` applies it elementwise."""
        if self.input_w is not None:
            return torch.diag(self.input_w)
        return torch.eye(self.input_size, dtype=self.cm.dtype, device=self.cm.device)

    @property
    def bias_ih(self) -> torch.Tensor | None:  # type: ignore[override]  # input_b
        """``input_b`` (None unless the input mapping is affine)."""
        return self.input_b

    def project(self, x: torch.Tensor, columns: slice | None = None, bias: bool = True):
        """The mapped input ``x * input_w (+ input_b)`` elementwise, as ncps's ``_map_inputs``:
        (..., len(columns)) -> (..., input_size), zeros (plus ``input_b``) outside ``columns``."""
        start, stop, _ = (columns or slice(None)).indices(self.input_size)
        out = x if self.input_w is None else x * self.input_w[start:stop]
        if (start, stop) != (0, self.input_size):
            out = F.pad(out, (start, self.input_size - stop))
        if bias and self.input_b is not None:
            out = out + self.input_b
        return out

    # -- the field ------------------------------------------------------------------------------

    def positive(self, name: str) -> torch.Tensor:
        """Parameter ``name`` as the field uses it: softplus of the stored value for the
        positive ones (``POSITIVE``) with ``implicit_param_constraints``, else as stored."""
        value = getattr(self, name)
        if self.implicit_param_constraints and name in POSITIVE:
            return F.softplus(value)
        return value

    def _synapses(self, pre: torch.Tensor, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """sum_j w s(pre_j) mask erev and sum_j w s(pre_j) mask, over the presynaptic units:
        pre (..., P) -> two (..., hidden)."""
        mu, sigma = getattr(self, prefix + "mu"), getattr(self, prefix + "sigma")
        mask = self.sparsity_mask if not prefix else self.sensory_sparsity_mask
        activation = self.positive(prefix + "w") * torch.sigmoid(sigma * (pre.unsqueeze(-1) - mu))
        activation = activation * mask
        erev = getattr(self, prefix + "erev")
        return (activation * erev).sum(dim=-2), activation.sum(dim=-2)

    def conductances(
        self, t: torch.Tensor | None, state: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cm, numerator, denominator)`` with cm dv/dt = numerator - denominator * v.

        The field is autonomous: t is not read (None allowed).

        state (..., hidden), u (..., input) the mapped input; cm (hidden,), the others
        (..., hidden).
        """
        sensory_num, sensory_den = self._synapses(u, "sensory_")
        num, den = self._synapses(state, "")
        gleak = self.positive("gleak")
        numerator = gleak * self.vleak + (num + sensory_num)
        denominator = gleak + (den + sensory_den)
        return self.positive("cm"), numerator, denominator

    def forward(self, t: torch.Tensor, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        cm, numerator, denominator = self.conductances(t, state, u)
        return (numerator - denominator * state) / cm

    def output(self, state: torch.Tensor) -> torch.Tensor:
        """The hidden state: the whole potential v, (..., hidden)."""
        return state

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """ncps's output mapping: the first ``motor_size`` units of h, times ``output_w``, plus
        ``output_b``: (..., hidden) -> (..., motor_size)."""
        out = h[..., : self.motor_size]
        if self.output_w is not None:
            out = out * self.output_w
        if self.output_b is not None:
            out = out + self.output_b
        return out

    def apply_weight_constraints(self) -> None:
        """Without ``implicit_param_constraints``: clip ``w``, ``sensory_w``, ``cm``, ``gleak``
        at zero in place (ncps's ``apply_weight_constraints``, after each optimizer step)."""
        if not self.implicit_param_constraints:
            with torch.no_grad():
                for name in POSITIVE:
                    getattr(self, name).clamp_(min=0.0)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, input_mapping={self.input_mapping!r}, "
            f"output_mapping={self.output_mapping!r}, motor_size={self.motor_size}, "
            f"implicit_param_constraints={self.implicit_param_constraints}"
        )
