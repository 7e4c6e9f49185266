"""rnnode.analysis: the dynamics of stacked RNNs, made measurable.

Modules: ``linear`` (linearisation of a whole stack, numeric frequency responses), ``gain``
(symbolic gains, sine-probe measurements, preferred frequencies), ``jacobians`` (Jacobians,
eigenvalues, step-map spectral radii), ``fixed_points`` (fixed and slow points),
``stability_maps`` (stability over a parameter grid), ``lyapunov`` (Lyapunov exponents),
``gradients`` (gradient flow through time and
depth), ``depth`` (the depth trade-off), ``meanfield`` (mean-field theory of random tanh networks:
stable variance, gradient factor, Lyapunov exponent), ``memory`` (short-term memory capacity),
``timescales`` (autocorrelation, kick response and sine gain along a driven trajectory),
``probes`` (a linear probe's accuracy on a layer's states) and
``plots`` (their figures). Import the modules or
the names below.

Return rule: every function that computes numbers from a model or from measurements returns
*detached torch tensors* (``.numpy()`` works at once on CPU); functions that offer
``create_graph=True`` (``jacobian``, ``eigenvalues``, ``linearize``, ``frequency_response``)
keep the autograd graph to the model's parameters and inputs when asked. Containers of such
results (``StabilityMap``, ``StateSpace``, ``FrequencyResponse``, ``Peaks``) hold tensors too
(``StabilityMap.numpy()`` converts). The symbolic routes (``linear_gain``, ``transfer_gain``,
``stack_gain``, ``sweet_spot_expression``) return sympy expressions; the closed-form depth
model (``accuracy_model``, ``sweet_spot``) is a numpy function of numpy arguments, and
``fit_accuracy_model`` returns a dict of floats.

Edge flags: a maximum taken over a probe grid that lands on the grid's first or last point is
no interior peak; ``preferred_frequencies(..., return_edges=True)`` returns the flags
(``Peaks.at_edge``), and without it such layers are named in a ``RuntimeWarning``.

Trust checks: ``measure_gain`` refuses amplitudes below the dtype's normal range and warns
where rounding or a missing steady state (an unstable layer) decides the number;
``lyapunov_exponents`` raises ``rnnode.DivergenceError`` when the trajectory explodes.
"""

from . import depth as depth
from . import fixed_points as fixed_points
from . import gain as gain
from . import gradients as gradients
from . import jacobians as jacobians
from . import linear as linear
from . import lyapunov as lyapunov
from . import meanfield as meanfield
from . import memory as memory
from . import plots as plots
from . import probes as probes
from . import stability_maps as stability_maps
from . import timescales as timescales
from .depth import accuracy_model as accuracy_model
from .depth import fit_accuracy_model as fit_accuracy_model
from .depth import sweet_spot as sweet_spot
from .depth import sweet_spot_expression as sweet_spot_expression
from .fixed_points import FixedPoints as FixedPoints
from .fixed_points import find_fixed_points as find_fixed_points
from .fixed_points import trajectory_starts as trajectory_starts
from .gain import Peaks as Peaks
from .gain import linear_gain as linear_gain
from .gain import measure_gain as measure_gain
from .gain import measure_response as measure_response
from .gain import preferred_frequencies as preferred_frequencies
from .gain import stack_gain as stack_gain
from .gain import transfer_gain as transfer_gain
from .gradients import count_gradient_paths as count_gradient_paths
from .gradients import depth_jacobian as depth_jacobian
from .gradients import depth_singular_values as depth_singular_values
from .gradients import gradient_norms as gradient_norms
from .jacobians import STEP_POLYNOMIALS as STEP_POLYNOMIALS
from .jacobians import eigenvalues as eigenvalues
from .jacobians import jacobian as jacobian
from .jacobians import spectral_radius as spectral_radius
from .linear import FrequencyResponse as FrequencyResponse
from .linear import StateSpace as StateSpace
from .linear import frequency_response as frequency_response
from .linear import linearize as linearize
from .lyapunov import lyapunov_exponents as lyapunov_exponents
from .meanfield import gaussian_expectation as gaussian_expectation
from .meanfield import gradient_factor as gradient_factor
from .meanfield import stable_variance as stable_variance
from .memory import linear_memory_function as linear_memory_function
from .memory import memory_function as memory_function
from .plots import plot_bode as plot_bode
from .plots import plot_depth_curve as plot_depth_curve
from .plots import plot_eigenvalues as plot_eigenvalues
from .plots import plot_fixed_points as plot_fixed_points
from .plots import plot_gain as plot_gain
from .plots import plot_gradient_norms as plot_gradient_norms
from .plots import plot_stability_map as plot_stability_map
from .probes import linear_probe_accuracy as linear_probe_accuracy
from .probes import linear_probe_correct as linear_probe_correct
from .stability_maps import StabilityMap as StabilityMap
from .stability_maps import scale_recurrent_and_input as scale_recurrent_and_input
from .stability_maps import stability_map as stability_map
from .timescales import autocorrelation as autocorrelation
from .timescales import band_centre as band_centre
from .timescales import decay_time as decay_time
from .timescales import kick_response as kick_response
from .timescales import trajectory_gain as trajectory_gain

__all__ = [
    "linear_probe_accuracy",
    "linear_probe_correct",
    "probes",
    "autocorrelation",
    "band_centre",
    "decay_time",
    "kick_response",
    "timescales",
    "trajectory_gain",
    "gaussian_expectation",
    "gradient_factor",
    "linear_memory_function",
    "memory_function",
    "stable_variance",
    "meanfield",
    "memory",
    "FixedPoints",
    "FrequencyResponse",
    "Peaks",
    "STEP_POLYNOMIALS",
    "StabilityMap",
    "StateSpace",
    "accuracy_model",
    "count_gradient_paths",
    "depth",
    "depth_jacobian",
    "depth_singular_values",
    "eigenvalues",
    "find_fixed_points",
    "fit_accuracy_model",
    "fixed_points",
    "frequency_response",
    "gain",
    "gradient_norms",
    "gradients",
    "jacobian",
    "jacobians",
    "linear",
    "linear_gain",
    "linearize",
    "lyapunov",
    "lyapunov_exponents",
    "measure_gain",
    "measure_response",
    "plot_bode",
    "plot_depth_curve",
    "plot_eigenvalues",
    "plot_fixed_points",
    "plot_gain",
    "plot_gradient_norms",
    "plot_stability_map",
    "plots",
    "preferred_frequencies",
    "scale_recurrent_and_input",
    "spectral_radius",
    "stability_maps",
    "stability_map",
    "stack_gain",
    "sweet_spot",
    "sweet_spot_expression",
    "trajectory_starts",
    "transfer_gain",
]
