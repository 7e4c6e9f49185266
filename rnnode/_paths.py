"""Input paths: samples x_k observed at times t_k turned into a control x(t).

Every path is built from knot times ``times = (t_0, t_1, ..., t_T)`` of shape ``(T + 1,)`` and
samples of shape ``(T, ..., channels)`` (time first), where sample ``x_k`` is observed at ``t_k``
for ``k = 1..T`` and ``t_0`` is the time the state starts from. ``evaluate(t)`` returns the control
at the scalar time ``t`` with shape ``(..., channels)``.

Schemes (all linear in the samples, so an affine map applied to the samples commutes with the
interpolation; rnnode uses this to project inputs through ``weight_ih`` once for all times):

- ``hold``: ``x(t) = x_k`` on ``[t_{k-1}, t_k)``. This is the exact bridge to the discrete RNN: an
  explicit Euler step from ``t_{k-1}`` sees exactly the sample ``x_k``. Discontinuous at the knots.
- ``linear``: piecewise linear through ``(t_k, x_k)``, with ``x(t_0) = x_1`` (the first sample held
  back to the start time).
- ``cubic``: natural cubic spline through the same knots as ``linear`` (twice continuously
  differentiable, the choice for adaptive solvers).
- ``causal``: ``x(t) = x_k`` on ``[t_k, t_{k+1})`` and 0 on ``[t_0, t_1)``: the last observation
  carried forward, so no sample acts before it was observed (for data observed at irregular
  times). Built as a held path of the shifted samples ``(0, x_1, ..., x_{T-1})`` (``x_T`` acts
  after t_T only). Since the shift comes before any projection, a model projects the shifted
  samples: the drive before the first observation is the bias ``b_ih``.

Outside ``[t_0, t_T]`` every path is constant, equal to its value at the nearest end.
"""

from __future__ import annotations

import bisect

import torch

from ._validate import check_choice

__all__ = [
    "INTERPOLATIONS",
    "CubicPath",
    "HoldPath",
    "InputPath",
    "LinearPath",
    "clock_path",
    "make_path",
]

INTERPOLATIONS = ("hold", "linear", "cubic", "causal")


class InputPath:
    """A control path x(t) built from samples at knot times: a polynomial on every interval.

    On the interval [t_j, t_{j+1}) the path is ``sum_p a_{p,j} (t - t_j)^p``; subclasses compute
    the coefficients ``a_p`` (each of shape (T, ..., C), one row per interval) and everything else
    (evaluation, segments) is shared. ``is_continuous`` says whether the path is continuous at the
    knots (solvers must step exactly onto the knots of a discontinuous path).
    """

    is_continuous: bool = True

    def __init__(self, times: torch.Tensor, values: torch.Tensor):
        self.times = times
        self.values = values
        self._knots = times.tolist()  # host copy, for finding the interval only
        # Rows unbound once and indexed by a host integer: indexing a tensor by a tensor would,
        # in the backward pass, scatter into a zero tensor of the whole path at every
        # evaluation (quadratic in T). The knot times likewise: the offset t - t_j is computed
        # against them as tensors, so that gradients reach the times (dL/dt).
        self._rows = tuple(a.unbind(0) for a in self.coefficients())
        self._time_rows = times.unbind(0)

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        """Polynomial coefficients per interval, lowest power first, each (T, ..., C)."""
        raise NotImplementedError

    def evaluate(self, t: torch.Tensor, interval: int | None = None) -> torch.Tensor:
        """x(t), shape (..., C); constant outside [t_0, t_T].

        Arguments:
            t: the time, a 0-d tensor.
            interval: the index j of the knot interval [t_j, t_{j+1}] that holds t, where the
                caller knows it (a fixed-step solve knows the interval of every stage from its
                grid); the path is then read without a host synchronisation. None: the interval
                is looked up on the host (right-continuous at the knots).
        """
        if interval is None:
            return self._polynomial(t, self._interval(t))
        return self._polynomial(t, min(interval, len(self._time_rows) - 2))

    def evaluate_near(self, t: torch.Tensor, interval: int) -> torch.Tensor:
        """x(t) for t in [t_j, t_{j+2}), j = ``interval``, right-continuous at t_{j+1}.

        The interval is chosen on the device: rows j and j + 1 are both evaluated and
        ``torch.where`` picks one, so nothing is copied to the host (an adaptive solve stepping
        in [t_j, t_{j+1}] evaluates there, and just past t_{j+1} after a jump). Indexing the
        coefficients by a device index instead would scatter, in the backward pass, into a zero
        tensor of the whole path at every evaluation.
        """
        last = len(self._time_rows) - 2
        j = min(interval, last)
        if j == last:
            return self._polynomial(t, j)
        after = t >= self._time_rows[j + 1]
        return torch.where(after, self._polynomial(t, j + 1), self._polynomial(t, j))

    def _polynomial(self, t: torch.Tensor, j: int) -> torch.Tensor:
        """The polynomial of interval j at t (clamped into [t_0, t_T])."""
        rows = [r[j] for r in self._rows]
        if len(rows) == 1:
            return rows[0]
        knots = self._time_rows
        s = t.clamp(knots[0], knots[-1]) - knots[j]
        value = rows[-1]
        for row in rows[-2::-1]:  # Horner
            value = row + s * value
        return value

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Every tensor ``evaluate`` reads: the coefficients, then the knot times."""
        return (*self.coefficients(), self.times)

    def with_tensors(self, tensors: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> InputPath:
        """The same path reading other tensors, in ``tensors()``'s order and shapes.

        The adjoint reads leaf copies of a segment's tensors through this, so that
        differentiating the field stops at the copies instead of walking the graph that made the
        path (which made the adjoint's backward pass quadratic in T).
        """
        *coefficients, times = tensors
        return _Segment(times, tuple(coefficients))

    def segment(self, j: int) -> InputPath:
        """The path on the single interval [t_j, t_{j+1}], closed at both ends.

        Built from the rows of interval j only, so that differentiating it (as the adjoint does
        at every evaluation) touches one row, not the whole path.
        """
        return _Segment(self.times[j : j + 2], tuple(r[j].unsqueeze(0) for r in self._rows))

    def reflect(self) -> InputPath:
        """The time-reversed path s -> x(t_0 + t_T - s) on the same interval.

        For ``hold`` the reversed path holds each sample over the interval in which the reversed
        direction consumes it (left-closed in reversed time), as a reverse discrete RNN does.
        """
        reflected = (self.times[0] + self.times[-1]) - self.times.flip(0)
        return type(self)(reflected, self.values.flip(0))

    def _interval(self, t: torch.Tensor) -> int:
        # Index j of the knot interval [t_j, t_{j+1}) holding t, clamped to 0..T-1, looked up on
        # the host (one synchronisation; a single interval needs none).
        if len(self._knots) == 2:
            return 0
        j = bisect.bisect_right(self._knots, float(t.detach())) - 1
        return min(max(j, 0), len(self._knots) - 2)


class _Segment(InputPath):
    """One interval of a path, given its coefficient rows (each (1, ..., C))."""

    def __init__(self, times: torch.Tensor, coefficients: tuple[torch.Tensor, ...]):
        self._coefficients = coefficients
        super().__init__(times, coefficients[0])

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        return self._coefficients


class HoldPath(InputPath):
    """x(t) = x_k on [t_{k-1}, t_k): sample k is held over the interval that ends at t_k.

    ``values`` has shape (T, ..., C): one value per interval.
    """

    is_continuous = False

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        return (self.values,)


class LinearPath(InputPath):
    """Piecewise linear interpolation through the knots (t_j, v_j), j = 0..T.

    ``values`` has shape (T + 1, ..., C): one value per knot.
    """

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        widths = (self.times[1:] - self.times[:-1]).reshape(-1, *([1] * (self.values.dim() - 1)))
        return (self.values[:-1], (self.values[1:] - self.values[:-1]) / widths)


class CubicPath(InputPath):
    """Natural cubic spline through the knots (t_j, v_j), j = 0..T; ``values`` (T + 1, ..., C).

    The second derivatives ``M`` solve the tridiagonal system
    ``w_{j-1} M_{j-1} + 2 (w_{j-1} + w_j) M_j + w_j M_{j+1} = 6 (d_j - d_{j-1})`` with
    ``M_0 = M_T = 0``, where ``w_j`` are the knot spacings and ``d_j`` the divided differences
    (Thomas algorithm, differentiable in the samples).
    """

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        knots = self.values
        widths = (self.times[1:] - self.times[:-1]).reshape(-1, *([1] * (knots.dim() - 1)))
        return self.spline_coefficients(widths, knots)

    @staticmethod
    def spline_coefficients(
        widths: torch.Tensor, knots: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(v_j, b_j, c_j, e_j) of the natural spline through ``knots`` (T + 1, ..., C) with
        knot spacings ``widths`` (T, ...) broadcasting against them."""
        slopes = (knots[1:] - knots[:-1]) / widths
        second = _natural_second_derivatives(widths, slopes)
        # On [t_j, t_{j+1}] with s = t - t_j:  x = v_j + b_j s + c_j s^2 + e_j s^3.
        b = slopes - widths * (2 * second[:-1] + second[1:]) / 6
        c = second[:-1] / 2
        e = (second[1:] - second[:-1]) / (6 * widths)
        return (knots[:-1], b, c, e)


def _natural_second_derivatives(widths: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """Second derivatives at the knots of the natural cubic spline, shape (n + 1, ...)."""
    n = slopes.shape[0]
    zero = torch.zeros_like(slopes[:1])
    if n < 2:
        return torch.cat([zero, zero], dim=0)
    # Interior unknowns M_1..M_{n-1}: sub-diagonal w_{j-1}, diagonal 2(w_{j-1}+w_j), super w_j.
    rhs = 6 * (slopes[1:] - slopes[:-1])
    diag = 2 * (widths[:-1] + widths[1:])
    forward = [rhs[0] / diag[0]]
    factors = [widths[1] / diag[0]] if n > 2 else []
    for j in range(1, n - 1):
        denom = diag[j] - widths[j] * factors[j - 1]
        forward.append((rhs[j] - widths[j] * forward[j - 1]) / denom)
        if j < n - 2:
            factors.append(widths[j + 1] / denom)
    interior = [forward[-1]]
    for j in range(n - 3, -1, -1):
        interior.append(forward[j] - factors[j] * interior[-1])
    interior.reverse()
    return torch.cat([zero, torch.stack(interior, dim=0), zero], dim=0)


def clock_path(
    interpolation: str, widths: torch.Tensor, samples: torch.Tensor, *, reverse: bool = False
) -> InputPath:
    """The path of samples observed at each sequence's own times, on a shared clock s.

    Sequence b is observed at t_{b,0} < ... < t_{b,T}; the clock s in [0, T] maps its integer
    knots to them, t_b(s) = t_{b,j} + (s - j) w_{b,j} on [j, j + 1] with w_{b,j} = t_{b,j+1} -
    t_{b,j}. The returned path is x_b(t_b(s)): a held or linear path is the same path on the
    integer knots; a cubic spline (natural, in t, per sequence) has the coefficients
    a_{p,j,b} w_{b,j}^p in powers of (s - j).

    Arguments:
        interpolation: one of ``INTERPOLATIONS``.
        widths: (T, B) the intervals w_{b,j} of every sequence (time first).
        samples: (T, B, C) the samples x_1..x_T (time first).
        reverse: the path of the time-reversed sequences (the reverse direction of a
            bidirectional layer), on the reversed clock.

    Returns:
        A path on the knots s = 0, 1, ..., T whose ``evaluate(s)`` is (B, C).
    """
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    interpolation, samples = as_held(interpolation, samples)
    T = samples.shape[0]
    knots = torch.arange(T + 1, dtype=samples.dtype, device=samples.device)
    if reverse:
        widths = widths.flip(0)
    if interpolation == "hold":
        return HoldPath(knots, samples.flip(0) if reverse else samples)
    values = torch.cat([samples[:1], samples], dim=0)  # the first sample held back to t_0
    if reverse:
        values = values.flip(0)
    if interpolation == "linear":
        return LinearPath(knots, values)
    w = widths.unsqueeze(-1)  # (T, B, 1)
    coefficients = CubicPath.spline_coefficients(w, values)
    scaled = tuple(a * w**p if p else a for p, a in enumerate(coefficients))
    return _Segment(knots, scaled)


_PATHS = {"hold": HoldPath, "linear": LinearPath, "cubic": CubicPath}


def as_held(interpolation: str, samples: torch.Tensor) -> tuple[str, torch.Tensor]:
    """The scheme and samples that build ``interpolation``'s path: ``causal`` is the ``hold``
    path of the shifted samples (0, x_1, ..., x_{T-1}) (the one place the shift is written);
    every other scheme is itself, on the samples as they are."""
    if interpolation == "causal":
        return "hold", torch.cat([torch.zeros_like(samples[:1]), samples[:-1]], dim=0)
    return interpolation, samples


def make_path(interpolation: str, times: torch.Tensor, samples: torch.Tensor) -> InputPath:
    """Build the path of the named scheme through ``samples`` (T, ..., C) at ``times`` (T + 1,)."""
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    interpolation, samples = as_held(interpolation, samples)
    cls = _PATHS[interpolation]
    if cls is HoldPath:
        return cls(times, samples)
    # Knot values: the first sample is held back to the start time t_0.
    return cls(times, torch.cat([samples[:1], samples], dim=0))
