"""The frequency-response container shared by the sine probes and the linearisation (private).

Phase convention (both routes): for the input x(t) = sin(omega t) e (e the unit input
direction), a stable linear(ised) system settles to y_j(t) = |H_j(omega) e| sin(omega t +
phi_j(omega)) with phi_j = arg(H_j(omega) e), in radians. Measured at the sample times t_k, as
``measure_gain``'s probes do, and computed from H(omega) = C (z I - A)^{-1} B + D by
``frequency_response``, it is the same number: the output at t_k is read against the input at
t_k. The phase is unwrapped along increasing frequency (``numpy.unwrap``: jumps of more than
pi between neighbouring frequencies are taken as wraps), starting from the principal value in
(-pi, pi] at the first frequency, so a grid too coarse to follow the phase misreads wraps, and
a phase within rounding of +-pi at the first frequency (a unit answering in antiphase) may start
on either branch: compare two such curves modulo 2 pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["FrequencyResponse", "SOURCES", "unwrapped_phase"]

#: How a response was obtained: the label a figure gives it.
SOURCES = ("linearised", "measured (sine probe)")


@dataclass(eq=False)
class FrequencyResponse:
    """The frequency response of a (linearised) stack: complex, per-layer gains and phases.

    Phase convention: the input sin(omega t) e drives the output |H_j e| sin(omega t + phi_j),
    phi_j = arg(H_j(omega) e) in radians, unwrapped along increasing frequency from its
    principal value at the first frequency (see ``rnnode.analysis.linear``'s module docstring).

    Attributes:
        omegas: (F,) frequencies (radians per unit time).
        response: (F, p, m) complex H(omega) = C (z I - A)^{-1} B + D (``frequency_response``);
            for a sine-probe measurement (``measure_response``) m = 1: the measured H(omega) e
            along the probed input direction e.
        gain: (num_layers, F) sqrt(sum_{j in layer} |H_j(omega) e|^2): ``measure_gain``'s
            convention (Euclidean norm over a layer's units per unit input amplitude along e).
        unit_gain: (num_layers, F, units per layer) |H_j(omega) e| per unit.
        phase: (F, p, m) arg H(omega) in radians, unwrapped along the frequencies.
        unit_phase: (num_layers, F, units per layer) arg(H_j(omega) e) in radians, unwrapped.
        kind: the linearised system's kind, ``"discrete"`` or ``"continuous"``; None for a
            measurement (the solve's settings decide which system the probes saw).
        dt: the sample spacing (of z = e^{i omega dt}, or of the probes' samples).
        source: ``"linearised"`` or ``"measured (sine probe)"``: what the numbers are.
    """

    omegas: torch.Tensor
    response: torch.Tensor
    gain: torch.Tensor
    unit_gain: torch.Tensor
    phase: torch.Tensor
    unit_phase: torch.Tensor
    kind: str | None
    dt: float
    source: str = "linearised"


def unwrapped_phase(values: torch.Tensor, dim: int) -> torch.Tensor:
    """arg(values) unwrapped along ``dim`` (numpy.unwrap's rule), differentiable.

    The wraps are whole multiples of 2 pi found on the detached values and added as a
    constant, so gradients flow through ``torch.angle`` unchanged.
    """
    angle = torch.angle(values)
    raw = angle.detach().cpu().numpy()
    shift = np.unwrap(raw, axis=dim) - raw
    return angle + torch.as_tensor(shift, dtype=angle.dtype, device=angle.device)
