"""The registry of studies: every module of ``rnnode.studies`` without a leading underscore that
defines ``run`` (adding the module registers the study)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_NOT_STUDIES = ("cli",)  # modules of the package that are not studies


def discover() -> dict[str, ModuleType]:
    """Every study: the modules of ``studies/`` without a leading underscore that define ``run``.

    Returns:
        ``{name: module}`` sorted by name, the name being the module's.
    """
    package = importlib.import_module(__package__)  # rnnode.studies, whatever the cwd holds
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _NOT_STUDIES:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return dict(sorted(found.items()))


def describe(module: ModuleType) -> str:
    """A study's summary: the first paragraph of its docstring, on one line."""
    summary = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(summary.split())


def study_name(module: ModuleType) -> str:
    """A study's name: its module's name within ``studies``."""
    return module.__name__.rsplit(".", 1)[-1]
