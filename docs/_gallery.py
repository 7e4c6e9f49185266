"""Helpers of the examples gallery (sphinx-gallery), named by string in ``docs/conf.py``.

- ``reset_torch`` runs between the examples (``reset_modules``): each example starts from
  torch's defaults, whatever the one before it set.
- ``unshown_figures`` is an image scraper that saves nothing: it fails the build when an
  example leaves a figure of ``rnnode.analysis``'s plot functions unshown. Those functions build
  a ``matplotlib.figure.Figure`` without pyplot, so ``plt.show()`` (and sphinx-gallery's
  matplotlib scraper, which reads pyplot's figure list) sees one only after ``plt.figure(fig)``
  hands it to pyplot (matplotlib >= 3.11); an example run as a script would show nothing.
"""

from __future__ import annotations

from typing import Any

import torch

# The figures seen in the example being run, kept (not their ids, which a collected figure's
# successor could reuse): pyplot's, once the matplotlib scraper has saved and closed them, look
# unmanaged in the blocks after.
_seen: dict[str, list[Any]] = {}


def reset_torch(gallery_conf: dict, fname: str) -> None:
    """torch's default dtype back to float32, its seed to 0, one thread."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    torch.set_num_threads(1)


def unshown_figures(block: Any, block_vars: dict, gallery_conf: dict) -> str:
    """Raise if a global name of the example holds a ``Figure`` that pyplot does not manage and
    that no earlier block held: a figure the example builds but never shows. It must run
    before the matplotlib scraper (``image_scrapers``' order), which closes pyplot's figures.

    Arguments:
        block, block_vars, gallery_conf: sphinx-gallery's scraper arguments
            (``block_vars["example_globals"]`` the example's namespace after the block).

    Returns:
        ``""``: the matplotlib scraper saves the figures.

    Raises:
        RuntimeError: naming the example and the global that holds the unshown figure.
    """
    from matplotlib.figure import Figure

    source = str(block_vars["src_file"])
    if source not in _seen:  # a new example: forget the figures of the one before
        _seen.clear()
        _seen[source] = []
    seen = _seen[source]
    for name, value in list(block_vars["example_globals"].items()):
        if not isinstance(value, Figure) or any(value is figure for figure in seen):
            continue
        seen.append(value)
        if value.canvas.manager is None:
            raise RuntimeError(
                f"{source}: the Figure in {name!r} is not handed to pyplot, so plt.show() "
                f"does not show it: call plt.figure({name}) before plt.show()"
            )
    return ""
