"""The registry of studies: every module of ``rnnode.studies`` without a leading underscore that
defines ``run`` (adding the module registers the study), and every study another package
registers under the entry-point group ``rnnode.studies`` (see ``studies/README.md``)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from importlib import metadata
from types import ModuleType

#: The entry-point group through which other packages add studies.
ENTRY_POINT_GROUP = "rnnode.studies"
_NOT_STUDIES = ("cli",)  # modules of the package that are not studies
# A study's name: a Python identifier without "-" (``NAME-quick`` is the quick run's folder).
_STUDY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _is_study(obj: object) -> bool:
    return isinstance(obj, ModuleType) and callable(getattr(obj, "run", None))


def builtin() -> dict[str, ModuleType]:
    """The studies rnnode ships: the modules of ``studies/`` without a leading underscore that
    define ``run``, ``{name: module}`` sorted by name."""
    package = importlib.import_module(__package__)  # rnnode.studies, whatever the cwd holds
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _NOT_STUDIES:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if _is_study(module):
            found[info.name] = module
    return dict(sorted(found.items()))


def external(taken: frozenset[str] | set[str] = frozenset()) -> dict[str, ModuleType]:
    """The studies other packages register: entry points of the group ``rnnode.studies``.

    An entry point ``NAME = "package.module"`` names a module that defines ``run(ctx)``; NAME is
    the study's name (letters, digits and ``_``, starting with a letter) and must differ from
    every name in ``taken`` (the built-in studies).

    Returns:
        ``{name: module}`` sorted by name.

    Raises:
        ValueError: an entry point with a bad or taken name, or one that does not load a module
            defining ``run``.
        ImportError: an entry point's module cannot be imported (the message names it).
    """
    found: dict[str, ModuleType] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry.name!r} = {entry.value!r} of group {ENTRY_POINT_GROUP!r}"
        if not _STUDY_NAME.match(entry.name):
            raise ValueError(
                f"{where}: expected a name of letters, digits and '_' starting with a letter, "
                f"got {entry.name!r}"
            )
        if entry.name in taken or entry.name in found:
            raise ValueError(f"{where}: expected a new study name, got {entry.name!r}, taken")
        try:
            module = entry.load()
        except ImportError as err:
            raise ImportError(f"{where}: cannot be imported ({err})") from err
        if not _is_study(module):
            raise ValueError(
                f"{where}: expected a module defining run(ctx), got {type(module).__name__}"
            )
        found[entry.name] = module
    return dict(sorted(found.items()))


def discover() -> dict[str, ModuleType]:
    """Every study: the built-in ones (``builtin``), then those of other packages (``external``).

    Returns:
        ``{name: module}``: the built-in studies sorted by name, then the others sorted by name.
    """
    studies = builtin()
    return {**studies, **external(set(studies))}


def describe(module: ModuleType) -> str:
    """A study's summary: the first paragraph of its docstring, on one line."""
    summary = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(summary.split())


def study_name(module: ModuleType) -> str:
    """A study's name: its entry point's name for a study of another package, else its module's
    last name (``rnnode.studies.chaos``: ``chaos``)."""
    package = importlib.import_module(__package__)
    if not module.__name__.startswith(f"{package.__name__}."):
        for name, other in external().items():
            if other is module:
                return name
    return module.__name__.rsplit(".", 1)[-1]
