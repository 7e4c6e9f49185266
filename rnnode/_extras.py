"""Optional dependencies: import one, or say in one line which extra of rnnode brings it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names it and the extra that brings it.

    ``rnnode-study`` prints the message as one line and exits with status 2.
    """

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package, self.extra, self.purpose = package, extra, purpose
        super().__init__(
            f"{purpose} needs {package}, which is not installed: "
            f"pip install 'rnnode[{extra}]' (or pip install {package})"
        )

    def __reduce__(self):  # picklable across the study workers' process boundary
        return (type(self), (self.package, self.extra, self.purpose))


def require(module: str, package: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (from the PyPI ``package``, part of ``rnnode[extra]``).

    Raises:
        MissingExtraError: the module cannot be imported; ``purpose`` says what needed it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(package, extra, purpose) from error
