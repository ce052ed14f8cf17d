"""Read pickle files (a case's ``.pkl`` properties, nnU-Net v2's ``postprocessing.pkl``) without running code.

A pickle can name any importable callable, so loading one from an untrusted source executes
whatever it names. This unpickler resolves only plain data types: builtins containers and
numbers, numpy arrays, dtypes and scalars, plus names the caller explicitly maps to objects.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError

_SAFE_BUILTINS = frozenset(
    {
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "int",
        "float",
        "complex",
        "bool",
        "str",
        "bytes",
        "bytearray",
        "slice",
        "range",
    }
)
# numpy moved its core to numpy._core in 2.0; pickles name either spelling
_NUMPY_MODULES = frozenset(
    {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
        "numpy.dtypes",
    }
)


def _numpy_object(name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    objects = {
        "ndarray": np.ndarray,
        "dtype": np.dtype,
        "_reconstruct": core.multiarray._reconstruct,
        "scalar": core.multiarray.scalar,
        "_frombuffer": core.numeric._frombuffer,
    }
    if name in objects:
        return objects[name]
    dtypes_module = getattr(np, "dtypes", None)
    if name.endswith("DType") and dtypes_module is not None and hasattr(dtypes_module, name):
        return getattr(dtypes_module, name)  # numpy >= 1.25 pickles dtypes by their class
    return None


class _RefusedType(pickle.UnpicklingError):
    """A pickle names a type or function outside the allowed data types."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, extra_allowed: Mapping[tuple[str, str], Any]):
        super().__init__(file)
        self.extra_allowed = extra_allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.extra_allowed:
            return self.extra_allowed[(module, name)]
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:  # protocol 2 says __builtin__
            return super().find_class(module, name)
        if (module, name) in (("collections", "OrderedDict"), ("_codecs", "encode")):
            # _codecs.encode is how pickle protocols < 3 store bytes
            return super().find_class(module, name)
        if module in _NUMPY_MODULES:
            found = _numpy_object(name)
            if found is not None:
                return found
        raise _RefusedType(f"{module}.{name}")


def load_pickle_safely(path: str | os.PathLike, extra_allowed: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Return the content of a pickle file holding only data; any other pickled type is refused.

    ``extra_allowed`` maps ``(module, name)`` pairs to the objects they should resolve to.
    """
    path = Path(path)
    if not path.is_file():
        raise NnUNetError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            return _DataOnlyUnpickler(f, extra_allowed or {}).load()
    except _RefusedType as e:
        raise NnUNetError(
            f"{path}: holds the type {str(e)[:200]}, which is not plain data; refusing to unpickle it"
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        struct.error,
        MemoryError,
    ) as e:
        raise NnUNetError(f"{path}: not a readable pickle file ({type(e).__name__}: {str(e)[:200]})") from None
