"""Load checkpoints safely: ``weights_only=True`` with an allow-list of the few types they hold.

nnU-Net v2 checkpoints contain numpy scalars and arrays (in ``logging``) and a ``torch.device``
(in ``init_args``); nothing else beyond tensors and builtins is ever unpickled.
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError, reason_of

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # added by DistributedDataParallel and torch.compile


def _numpy_safe_globals() -> list[Any]:
    safe: list[Any] = [np.dtype, np.ndarray]
    multiarray = getattr(np, "_core", None) or np.core
    safe += [multiarray.multiarray.scalar, multiarray.multiarray._reconstruct]
    # numpy >= 1.25 pickles dtypes by their class (e.g. numpy.dtypes.Float64DType)
    dtypes_module = getattr(np, "dtypes", None)
    if dtypes_module is not None:
        safe += [getattr(dtypes_module, n) for n in dir(dtypes_module) if n.endswith("DType")]
    return safe


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Return the checkpoint dict at ``path``; unknown pickled types are refused, not executed."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise NnUNetError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        offending = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line), "")
        if not offending:  # not a refused type: the file is no pickle at all (random bytes, truncated)
            raise NnUNetError(f"{path}: not a readable checkpoint ({reason_of(e)})") from None
        raise NnUNetError(
            f"{path}: checkpoint holds types that are not allowed, refusing to unpickle them ({offending[:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, struct.error, zipfile.BadZipFile) as e:
        empty = " (the file is empty)" if path.stat().st_size == 0 else ""
        raise NnUNetError(f"{path}: not a readable checkpoint{empty} ({reason_of(e)})") from None
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise NnUNetError(f"{path}: not an nnU-Net checkpoint (no 'network_weights')")
    return checkpoint


def unwrap_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Return ``state_dict`` with DDP / torch.compile prefixes removed from its keys."""
    clean = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        clean[key] = value
    return clean
