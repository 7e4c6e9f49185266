"""Run between the gallery's examples (sphinx-gallery's ``reset_modules``): each example starts
from torch's defaults, whatever the one before it set."""

from __future__ import annotations

import torch


def reset_torch(gallery_conf: dict, fname: str) -> None:
    """torch's default dtype back to float32, its seed to 0, one thread."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    torch.set_num_threads(1)
