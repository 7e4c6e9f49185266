"""Sphinx configuration of rnnode's documentation.

Build: ``python -m sphinx -W -b html docs OUT`` (``pip install -e ".[docs]"``). The examples in
``examples/`` are executed at build time by sphinx-gallery, which writes their pages into
``docs/auto_examples/`` (generated, not committed).

Intersphinx links to torch, numpy and scipy need the network, which the project's machines and CI
do not have; an unreachable inventory is a warning, and warnings are errors here. The mapping is
therefore switched on only when ``RNNODE_DOCS_INTERSPHINX=1`` is set (a machine with network).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import torch

import rnnode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _api.py (the API pages) and _gallery.py (between examples)

project = "rnnode"
author = "The rnnode developers"
copyright = "The rnnode developers (MIT licence)"
release = rnnode.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # pages moved from the README start at ## headings

# Autodoc: the docstrings are Google style ("Arguments:", "Returns:", "Raises:").
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: no second entry beside autodoc's members
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
autodoc_default_options = {"show-inheritance": False}

# Intersphinx only with the network (see the module docstring).
if os.environ.get("RNNODE_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
    }
else:
    intersphinx_mapping = {}

# The examples gallery: every script in examples/ runs at build time and its figures are kept.
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    # A check that every Figure of rnnode.analysis's plot functions is handed to pyplot
    # (plt.figure(fig)) and so shown (docs/_gallery.py), then pyplot's scraper, which saves
    # them. In this order: the matplotlib scraper closes the figures it saves.
    "image_scrapers": ("_gallery.unshown_figures", "matplotlib"),
    "write_computation_times": True,
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib", "_gallery.reset_torch"),
}

# Matplotlib draws off screen. The examples' tensors are small: one torch thread is faster than
# two fighting over a shared machine's cores (measured: 66 s of CPU against 4.5 s for the
# flip-flop example on the project's loaded 2-core machine).
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

html_theme = "furo"
html_title = f"rnnode {release}"
html_static_path: list[str] = []

# The docstrings are written as plain text for help(): equations such as |F(h)|^2 and x**2 are
# not reST. Before napoleon reads them, "|" and a "*" that opens no emphasis are escaped outside
# ``literals`` and literal blocks, so that they print as written.
_INLINE_LITERAL = re.compile(r"(``.+?``)")
_EMPHASIS = re.compile(r"(?<![\\\w*])(\*\*?)(?=[^\s*])(.+?)(?<=[^\s*])\1(?![\w*])")


def _escape_part(part: str) -> str:
    """Escape "|" and a lone "*" in text outside ``literals``, keeping *word* and **words**."""
    part = part.replace("|", "\\|")
    kept: list[str] = []  # emphasis that is meant: *word* and **words**
    part = _EMPHASIS.sub(lambda m: kept.append(m.group(0)) or f"\0{len(kept) - 1}\0", part)
    part = part.replace("*", "\\*")
    return re.sub("\0(\\d+)\0", lambda m: kept[int(m.group(1))], part)


def _escape_text(text: str) -> str:
    parts = _INLINE_LITERAL.split(text)
    for i in range(0, len(parts), 2):  # the even parts lie outside ``literals``
        parts[i] = _escape_part(parts[i])
    return "".join(parts)


# "    t, method, ...," then "        more: ..."
_NAMES_CONTINUED = re.compile(r"^\s+\w+(, \w+)*,$")


def _escape_plain_text(app, what, name, obj, options, lines: list[str]) -> None:
    for i in range(len(lines) - 2, -1, -1):  # a list of argument names broken over two lines
        if _NAMES_CONTINUED.match(lines[i]) and re.match(r"^\s+\w+(, \w+)*:", lines[i + 1]):
            lines[i : i + 2] = [lines[i] + " " + lines[i + 1].strip()]
    literal_indent = None  # the indent of the line that opened a literal block
    opens_literal, base_indent = False, 0
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                continue
            literal_indent = None
        if opens_literal and line.strip():
            opens_literal = False
            if indent > base_indent:
                literal_indent = base_indent
                continue
        if line.strip().startswith(">>>"):
            continue
        lines[i] = _escape_text(line)
        if line.rstrip().endswith("::"):
            opens_literal, base_indent = True, indent


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _escape_plain_text, priority=400)


# The API reference pages are written from the namespaces' public names (docs/_api.py).
from _api import write_api_pages  # noqa: E402

write_api_pages(HERE / "api" / "generated")
