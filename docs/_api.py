"""The API reference pages, written from the namespaces' public names at build time.

Every public name of ``rnnode``, ``rnnode.fields``, ``rnnode.training``, ``rnnode.analysis`` and
``rnnode.studies`` gets an entry: the groups below order them by topic, and a name that no group
lists (one added after this file was written) still appears, under "More". An object exported by
several namespaces (the field classes are in ``rnnode`` and ``rnnode.fields``) is documented once,
in the first namespace whose groups list it, and linked from the others. The modules of
``rnnode.analysis`` export a few names that the namespace does not (``meanfield.lyapunov_exponent``,
type aliases, constants): they are documented on its page under "Only in their modules", by their
full module path. ``public_names``, ``module_only_names`` and ``api_pages`` are what
``tests/test_docs.py`` checks.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from pathlib import Path

# (module, title, [(section title, [names])]); names absent from the module are skipped, so a
# name can be listed before it lands.
NAMESPACES: list[tuple[str, str, list[tuple[str, list[str]]]]] = [
    (
        "rnnode",
        "rnnode: the model, the bridges, paths and solver",
        [
            ("The model", ["ODERNN", "Solution", "SolveSettings", "SolverStats", "LTC"]),
            ("Bridges to torch and ncps", ["from_torch", "to_torch", "from_ncps", "to_ncps"]),
            ("Input paths", ["InputPath", "HoldPath", "LinearPath", "CubicPath"]),
            ("Integration", ["integrate"]),
            ("Errors", ["DivergenceError", "StepBudgetError"]),
            (
                "Supported choices",
                [
                    "METHODS",
                    "FIXED_METHODS",
                    "ADAPTIVE_METHODS",
                    "ENGINES",
                    "COUPLINGS",
                    "INTERPOLATIONS",
                    "CELLS",
                ],
            ),
        ],
    ),
    (
        "rnnode.fields",
        "rnnode.fields: vector fields and the field protocol",
        [
            ("The protocol", ["Field", "FusibleField", "check_field"]),
            ("Base classes", ["VectorField", "RelaxationField"]),
            (
                "The built-in cells",
                [
                    "ElmanField",
                    "GRUField",
                    "LSTMField",
                    "LinearField",
                    "AntisymmetricField",
                    "CoupledOscillatorField",
                    "LTCField",
                ],
            ),
        ],
    ),
    (
        "rnnode.training",
        "rnnode.training: tasks, models, losses, training",
        [
            ("Models", ["SequenceModel", "PredictiveCoding"]),
            ("Training", ["train", "Trainer", "NonFiniteLossError"]),
            ("Losses", ["task_loss", "task_metrics", "layer_features", "gate_coupling_penalty"]),
            (
                "Tasks",
                [
                    "Task",
                    "make_task",
                    "TASK_NAMES",
                    "TASK_KINDS",
                    "adding_task",
                    "flip_flop_task",
                    "sines_task",
                    "forecast_task",
                    "future_task",
                    "two_sided_task",
                    "two_level_chain",
                    "two_level_chain_filter",
                    "two_level_chain_task",
                    "digits_task",
                    "co2_task",
                    "sunspots_task",
                ],
            ),
        ],
    ),
    (
        "rnnode.analysis",
        "rnnode.analysis: dynamics made measurable",
        [
            (
                "Linearisation and frequency responses",
                ["linearize", "StateSpace", "frequency_response", "FrequencyResponse"],
            ),
            (
                "Gains: symbolic and measured",
                [
                    "linear_gain",
                    "transfer_gain",
                    "stack_gain",
                    "measure_gain",
                    "measure_response",
                    "preferred_frequencies",
                    "Peaks",
                ],
            ),
            ("Jacobians and eigenvalues", ["jacobian", "eigenvalues", "spectral_radius"]),
            ("Step polynomials", ["STEP_POLYNOMIALS"]),
            ("Fixed points", ["find_fixed_points", "trajectory_starts", "FixedPoints"]),
            (
                "Stability maps",
                ["stability_map", "StabilityMap", "scale_recurrent_and_input"],
            ),
            ("Lyapunov exponents", ["lyapunov_exponents"]),
            (
                "Gradient flow",
                [
                    "gradient_norms",
                    "depth_jacobian",
                    "depth_singular_values",
                    "count_gradient_paths",
                ],
            ),
            (
                "The depth trade-off",
                ["accuracy_model", "fit_accuracy_model", "sweet_spot", "sweet_spot_expression"],
            ),
            ("Mean-field theory", ["stable_variance", "gradient_factor", "gaussian_expectation"]),
            ("Memory capacity", ["memory_function", "linear_memory_function"]),
            (
                "Timescales along a trajectory",
                [
                    "autocorrelation",
                    "decay_time",
                    "kick_response",
                    "trajectory_gain",
                    "band_centre",
                ],
            ),
            (
                "Figures",
                [
                    "plot_gain",
                    "plot_bode",
                    "plot_eigenvalues",
                    "plot_stability_map",
                    "plot_fixed_points",
                    "plot_gradient_norms",
                    "plot_depth_curve",
                ],
            ),
        ],
    ),
    (
        "rnnode.studies",
        "rnnode.studies: running and writing studies",
        [
            ("Running studies", ["run_study", "discover", "describe", "run_folder", "Context"]),
            ("Settings", ["settings_for", "seeded", "one_thread"]),
            ("Sweeps", ["sweep", "point_key", "SweepError"]),
            ("Claims", ["claims_hold", "format_claim"]),
            (
                "Statistics",
                [
                    "mean_test",
                    "MeanTest",
                    "t_interval",
                    "bootstrap_interval",
                    "bootstrap_test",
                    "sign_test",
                    "spearman",
                    "holm",
                    "minimum_detectable_effect",
                ],
            ),
            ("Files", ["read_json", "write_json", "atomic_write"]),
        ],
    ),
]

# Constants have no docstring of their own: one line each.
CONSTANTS = {
    "METHODS": "Every solver method name ``solve`` and a model call accept.",
    "FIXED_METHODS": "The fixed-step methods (a ``step_size``, or one step per interval).",
    "ADAPTIVE_METHODS": "The adaptive methods (``rtol``, ``atol``; no ``step_size``).",
    "ENGINES": "The solve engines: rnnode's own loops, or ``torchdiffeq.odeint``.",
    "COUPLINGS": "How layer l is driven by layer l-1: at the sample times, or at every instant.",
    "INTERPOLATIONS": "How the samples become an input path x(t).",
    "CELLS": "The cell names of ``ODERNN(cell=...)``.",
    "TASK_NAMES": "The names ``make_task`` accepts.",
    "TASK_KINDS": "The kinds of task (what the loss compares).",
    "STEP_POLYNOMIALS": "The stability polynomial R(z) of one step of each fixed-step method: "
    "coefficients of z^0, z^1, ... (the step is stable where abs(R(dt lambda)) < 1).",
    "PARAMETERS": "The names of the depth model's parameters, in ``accuracy_model``'s order "
    "(the keys of ``fit_accuracy_model``'s result).",
    "KINDS": "The kinds of system the gain routes accept: a discrete map or a continuous field.",
    "MAX_SYMBOLIC_STATES": "The most states the symbolic routes take by default (sympy's "
    "simplification grows steeply with the number of states).",
    "MatrixLike": "A matrix given as nested sequences, a numpy array, a torch tensor or a sympy "
    "Matrix.",
    "Parametrize": "The map of a stability map's two parameters (p, q) to the model's parameters "
    "and the constant input: ``(params, p, q) -> (params, x)``, as "
    "``scale_recurrent_and_input``.",
}


def public_names(module_name: str) -> list[str]:
    """The public names of a namespace: its ``__all__``, or its non-module public attributes."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_") and n != "annotations"]
    return [n for n in names if not inspect.ismodule(getattr(module, n))]


def module_only_names(module_name: str) -> list[tuple[str, str]]:
    """(module, name) for each name in the ``__all__`` of a module that ``module_name``
    exports (``rnnode.analysis.meanfield``) and that ``module_name`` itself does not export."""
    module = importlib.import_module(module_name)
    names = set(public_names(module_name))
    submodules = sorted(
        n for n in getattr(module, "__all__", []) if inspect.ismodule(getattr(module, n))
    )
    found = []
    for sub in submodules:
        for name in getattr(getattr(module, sub), "__all__", []):
            if name not in names:
                found.append((f"{module_name}.{sub}", name))
    return found


def _directive(module_name: str, name: str, obj: object) -> str:
    target = f"{module_name}.{name}"
    if typing.get_origin(obj) is not None:  # a type alias (MatrixLike, Parametrize)
        return f".. py:data:: {target}\n   :value: {obj!r}\n\n   {CONSTANTS.get(name, '')}\n"
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return f".. autoexception:: {target}\n"
        return f".. autoclass:: {target}\n   :members:\n"
    if callable(obj):
        return f".. autofunction:: {target}\n"
    # Data: a value's own __doc__ is its type's (dict's, tuple's), so the line comes from here.
    text = CONSTANTS.get(name, "")
    value = repr(obj) if len(repr(obj)) <= 300 else f"{type(obj).__name__} of {len(obj)} items"
    return f".. py:data:: {target}\n   :value: {value}\n\n   {text}\n"


def _homes() -> dict[int, str]:
    """id(object) -> the namespace that documents it: the first whose groups list it, else the
    first that exports it."""
    home: dict[int, str] = {}
    for listed_only in (True, False):
        for module_name, _, groups in NAMESPACES:
            module = importlib.import_module(module_name)
            names = public_names(module_name)
            listed = {n for _, group in groups for n in group}
            for name in names:
                if listed_only and name not in listed:
                    continue
                home.setdefault(id(getattr(module, name)), module_name)
    return home


def api_pages() -> dict[str, str]:
    """The reST source of each API page, by file name (``rnnode.fields.rst``, ...)."""
    home = _homes()
    pages: dict[str, str] = {}
    for module_name, title, groups in NAMESPACES:
        module = importlib.import_module(module_name)
        names = public_names(module_name)
        listed = [n for _, group in groups for n in group if n in names]
        more = [n for n in names if n not in listed]
        lines = [
            title,
            "=" * len(title),
            "",
            f".. automodule:: {module_name}",
            "   :no-members:",
            "",
        ]
        if module_name == "rnnode.analysis":
            submodules = sorted(n for n in module.__all__ if inspect.ismodule(getattr(module, n)))
            lines += [
                "The names below are also importable from their modules: "
                + ", ".join(f"``rnnode.analysis.{n}``" for n in submodules)
                + ".",
                "",
            ]
        elsewhere: list[str] = []
        for section, group in [*groups, ("More", more)]:
            entries = []
            for name in group:
                if name not in names:
                    continue
                obj = getattr(module, name)
                if home[id(obj)] != module_name:
                    elsewhere.append(f":py:obj:`{home[id(obj)]}.{name}`")
                    continue
                entries.append(_directive(module_name, name, obj))
            if entries:
                lines += [section, "-" * len(section), "", *entries]
        only = [
            _directive(sub, name, getattr(importlib.import_module(sub), name))
            for sub, name in module_only_names(module_name)
        ]
        if only:
            section = "Only in their modules"
            lines += [
                section,
                "-" * len(section),
                "",
                f"Exported by a module of ``{module_name}`` but not by ``{module_name}`` itself: "
                "import them from the module.",
                "",
                *only,
            ]
        if elsewhere:
            lines += [
                "Also exported here",
                "------------------",
                "",
                f"``{module_name}`` also exports these, documented on their own page: "
                + ", ".join(elsewhere)
                + ".",
                "",
            ]
        pages[f"{module_name}.rst"] = "\n".join(lines)
    return pages


def write_api_pages(folder: Path) -> None:
    """Write the pages into ``folder`` (only where the text changed, so rebuilds stay quick)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in api_pages().items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
