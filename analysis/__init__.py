"""analysis: the dynamics of stacked RNNs, made measurable.

Gains (``gain``), local stability (``stability``), gradient flow (``gradients``), the depth
trade-off (``depth``) and their figures (``plots``). Import the modules or these names.
"""

from . import depth as depth
from . import gain as gain
from . import gradients as gradients
from . import linear as linear
from . import plots as plots
from . import stability as stability
from .depth import accuracy_model as accuracy_model
from .depth import fit_accuracy_model as fit_accuracy_model
from .depth import sweet_spot as sweet_spot
from .depth import sweet_spot_expression as sweet_spot_expression
from .gain import linear_gain as linear_gain
from .gain import measure_gain as measure_gain
from .gain import preferred_frequencies as preferred_frequencies
from .gain import stack_gain as stack_gain
from .gain import transfer_gain as transfer_gain
from .gradients import count_gradient_paths as count_gradient_paths
from .gradients import depth_jacobian as depth_jacobian
from .gradients import depth_singular_values as depth_singular_values
from .gradients import gradient_norms as gradient_norms
from .linear import FrequencyResponse as FrequencyResponse
from .linear import StateSpace as StateSpace
from .linear import frequency_response as frequency_response
from .linear import linearize as linearize
from .plots import plot_depth_curve as plot_depth_curve
from .plots import plot_eigenvalues as plot_eigenvalues
from .plots import plot_gain as plot_gain
from .plots import plot_gradient_norms as plot_gradient_norms
from .plots import plot_stability_map as plot_stability_map
from .stability import STEP_POLYNOMIALS as STEP_POLYNOMIALS
from .stability import StabilityMap as StabilityMap
from .stability import eigenvalues as eigenvalues
from .stability import fixed_points as fixed_points
from .stability import jacobian as jacobian
from .stability import lyapunov_exponents as lyapunov_exponents
from .stability import scale_recurrent_and_input as scale_recurrent_and_input
from .stability import spectral_radius as spectral_radius
from .stability import stability_map as stability_map
