"""One explicit Runge-Kutta step on a tableau (``rnnode._tableaus``): the one stepper of every
method, fixed-step and adaptive.

Each stage's input is one chain of ``torch.add`` over the nonzero weights (the fewest autograd
nodes the tableau needs) with the step size h a number; h is a 0-dimensional tensor only where
the times need a gradient. A stage on the step's end (c = 1) is evaluated on the side of a jump
that the step belongs to (``Perturb.PREV``), as torchdiffeq does.
"""

from __future__ import annotations

import enum

import torch

from ._tableaus import Tableau

__all__ = ["Perturb", "combine", "rk_step"]


class Perturb(enum.Enum):
    """Where a field that jumps at a time t is evaluated: at t, just after it or just before."""

    NONE = 0
    NEXT = 1
    PREV = 2


def combine(y: torch.Tensor | None, h, weights, ks) -> torch.Tensor:
    """y + h sum_j w_j k_j over the nonzero w_j, one ``torch.add`` per term; h a number, or a
    0-dimensional tensor when the times need a gradient; y None: the sum alone."""
    terms = [(w, k) for w, k in zip(weights, ks, strict=False) if w != 0.0]
    w0, acc = terms[0]
    for w, k in terms[1:]:
        acc = torch.add(acc, k, alpha=w / w0)
    if y is None:
        return acc * (h * w0)
    if isinstance(h, torch.Tensor):
        return y + (h * w0) * acc
    return torch.add(y, acc, alpha=h * w0)


def rk_step(tableau: Tableau, func, t0, h, t1, y0, f0, perturb: bool = True):
    """One step of ``tableau`` from (t0, y0) to t1 = t0 + h.

    Arguments:
        func: the field, ``func(t, y, perturb=Perturb...)``.
        t0, t1: the step's ends, 0-dimensional tensors.
        h: t1 - t0, a number (or a 0-dimensional tensor where the times need a gradient).
        y0: the state at t0; f0: the field there (the first stage).
        perturb: evaluate a stage on t1 just before it (a field that jumps at t1).

    Returns:
        ``(y1, ks)``: the new state and the stages' evaluations k_1..k_s.
    """
    last = Perturb.PREV if perturb else Perturb.NONE
    ks = [f0]
    z = y0
    for c, weights in zip(tableau.c, tableau.a, strict=True):
        z = combine(y0, h, weights, ks)
        if c == 1.0:  # a stage on t1: the side of a jump the step belongs to
            ks.append(func(t1, z, perturb=last))
        else:
            ks.append(func(t0 + c * h, z))
    y1 = z if tableau.fsal else combine(y0, h, tableau.b, ks)
    return y1, ks
