"""The raw, preprocessed and results folders, from nnU-Net's environment variables.

Env vars are read on every call (not at import) so tests and scripts can change them. The module
attributes ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` are nnU-Net v2's names for
the same folders (see documentation/compatibility.md). When a
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


class _EnvPath(os.PathLike):
    """nnU-Net v2's module attributes ``nnUNet_raw`` etc.: a path that reads its variable when used.

    As in nnU-Net v2.8.1 (``os.fspath``, ``str``, ``os.path.join`` and ``bool`` read the
    environment at that moment; ``== None`` is true while the variable is unset). Unlike nnU-Net v2,
    an unset variable resolves to the same fallback folder our commands use (``~/nnUNet_data/...``)
    instead of raising, so a script and ``nnUNetv2_*`` commands always agree on the folder.
    """

    def __init__(self, env_var_name: str):
        self.env_var_name = env_var_name

    def get(self) -> str | None:
        """The variable's value, or None when unset."""
        return os.environ.get(self.env_var_name) or None

    def is_set(self) -> bool:
        """True when the environment variable is set."""
        return self.get() is not None

    def require(self) -> str:
        """The folder as a string (the fallback folder when the variable is unset)."""
        return str(_folder_from_env(self.env_var_name))

    def __fspath__(self) -> str:
        return self.require()

    def __str__(self) -> str:
        return self.require()

    def __repr__(self) -> str:
        value = self.get()
        return repr(value) if value is not None else f"<unset {self.env_var_name}>"

    def __bool__(self) -> bool:
        return self.is_set()

    def __eq__(self, other) -> bool:
        if other is None:
            return self.get() is None
        if isinstance(other, _EnvPath):
            return self.env_var_name == other.env_var_name
        return self.get() == os.fspath(other) if isinstance(other, (str, os.PathLike)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.env_var_name)


# nnU-Net v2's public names (``from nnunetv2.paths import nnUNet_results``); our own code calls the
# functions above instead
nnUNet_raw = _EnvPath("nnUNet_raw")
nnUNet_preprocessed = _EnvPath("nnUNet_preprocessed")
nnUNet_results = _EnvPath("nnUNet_results")
