"""The raw, preprocessed and results folders, from nnU-Net's environment variables.

Env vars are read on every call (not at import) so tests and scripts can change them. When a
variable is unset we fall back to a folder under ``~/nnUNet_data`` and say so once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_DEFAULT_ROOT_ENV = "NNUNET_DEFAULT_ROOT"  # lets tests redirect the home default
_announced: set[str] = set()


def _folder_from_env(var_name: str) -> Path:
    value = os.environ.get(var_name)
    if value:
        return Path(value)
    root = Path(os.environ.get(_DEFAULT_ROOT_ENV, Path.home() / "nnUNet_data"))
    folder = root / var_name
    if var_name not in _announced:
        _announced.add(var_name)
        logger.warning("%s is not set; using %s", var_name, folder)
    return folder


def raw_folder() -> Path:
    """Return the nnUNet_raw folder."""
    return _folder_from_env("nnUNet_raw")


def preprocessed_folder() -> Path:
    """Return the nnUNet_preprocessed folder."""
    return _folder_from_env("nnUNet_preprocessed")


def results_folder() -> Path:
    """Return the nnUNet_results folder."""
    return _folder_from_env("nnUNet_results")
