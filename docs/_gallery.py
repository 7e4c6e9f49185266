"""Helpers of the examples gallery (sphinx-gallery), named by string in ``docs/conf.py``.

- ``reset_torch`` runs between the examples (``reset_modules``): each example starts from
  torch's defaults, whatever the one before it set.
- ``unmanaged_figures`` is an image scraper for the figures that ``rnnode.analysis``'s plot
  functions return: they build a ``matplotlib.figure.Figure`` directly, without pyplot, so
  sphinx-gallery's matplotlib scraper (which reads pyplot's figure list) never sees them.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import torch

# The figures already saved for the example being run, kept (not their ids, which a collected
# figure's successor could reuse) so that a figure is saved once, after the block that made it.
_saved: dict[str, list[Any]] = {}


def reset_torch(gallery_conf: dict, fname: str) -> None:
    """torch's default dtype back to float32, its seed to 0, one thread."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    torch.set_num_threads(1)


def unmanaged_figures(block: Any, block_vars: dict, gallery_conf: dict) -> str:
    """Save every ``Figure`` that a global name of the example holds, that pyplot does not
    manage and that no earlier block saved; return the reST that shows them. It must run
    before the matplotlib scraper (``image_scrapers``' order), which closes pyplot's figures.

    A figure is found when a global name holds it at the end of its block (``fig = ...``).

    Arguments:
        block, block_vars, gallery_conf: sphinx-gallery's scraper arguments
            (``block_vars["example_globals"]`` the example's namespace after the block,
            ``block_vars["image_path_iterator"]`` the image file names to use).

    Returns:
        reST image directives (empty when the block made no such figure).
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    source = str(block_vars["src_file"])
    if source not in _saved:  # a new example: forget the figures of the one before
        _saved.clear()
        _saved[source] = []
    saved = _saved[source]
    images = []
    for value in list(block_vars["example_globals"].values()):
        if not isinstance(value, Figure) or any(value is figure for figure in saved):
            continue
        saved.append(value)
        if value.canvas.manager is not None:
            # pyplot's: the matplotlib scraper, which runs after this one, saves and closes it
            # (closed, it has no manager: remembered here, it is not taken in a later block)
            continue
        path = PurePosixPath(next(block_vars["image_path_iterator"]))
        value.savefig(path)
        images.append(path)
    return figure_rst(images, gallery_conf["src_dir"]) if images else ""
