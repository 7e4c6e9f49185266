"""Type-check rnnode, rnnode.analysis and rnnode.studies with mypy; exit with mypy's status.

The repository keeps ``analysis/`` and ``studies/`` at its top level and installs them as
``rnnode.analysis`` and ``rnnode.studies`` (pyproject's ``package-dir``). mypy follows neither
``package-dir`` nor an editable install's import hook, so this script lays out the installed
package from symbolic links under ``build/typecheck`` (``rnnode/<each entry of rnnode/>``,
``rnnode/analysis -> analysis/``, ``rnnode/studies -> studies/``), runs ``mypy -p rnnode`` there
with the repository's ``pyproject.toml`` (its ``[tool.mypy]``), and prints each path as the
repository's own (``rnnode/analysis/x.py`` as ``analysis/x.py``).

Usage: ``python .ci/typecheck.py [mypy options]`` from anywhere; mypy must be installed (the
``dev`` extra).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the installed layout is built (``build/`` is ignored by git).
WORK = ROOT / "build" / "typecheck"
#: Top-level folders installed as subpackages of rnnode (pyproject's package-dir).
MAPPED = ("analysis", "studies")


def lay_out() -> Path:
    """Rebuild ``WORK/rnnode`` from links; return ``WORK``."""
    package = WORK / "rnnode"
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    for entry in sorted((ROOT / "rnnode").iterdir()):
        if entry.name != "__pycache__" and entry.name not in MAPPED:
            (package / entry.name).symlink_to(entry)
    for name in MAPPED:
        (package / name).symlink_to(ROOT / name, target_is_directory=True)
    return WORK


def main(argv: list[str]) -> int:
    work = lay_out()
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(work / ".mypy_cache"),
        *argv,
        "-p",
        "rnnode",
    ]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    mapped = re.compile(r"^rnnode/(" + "|".join(MAPPED) + r")/", flags=re.MULTILINE)
    sys.stdout.write(mapped.sub(r"\1/", done.stdout))
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
