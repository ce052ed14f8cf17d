"""Small file helpers: JSON in and out, folder listing, and writes that never leave a half-written file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_json(path: str | os.PathLike) -> Any:
    """Return the parsed content of a JSON file; a missing or broken file is a user error."""
    path = Path(path)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise NnUNetError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise NnUNetError(f"{path}: not valid JSON ({e})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block succeeds.

    ``suffix`` ends the temporary name, for writers that pick the format by ending (``.nii.gz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_json(obj: Any, path: str | os.PathLike, sort_keys: bool = False, indent: int = 4) -> None:
    """Write ``obj`` as JSON atomically (numpy scalars and arrays become plain lists/numbers)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, default=_to_builtin, sort_keys=sort_keys, indent=indent)


def list_files(folder: str | os.PathLike, file_ending: str = "") -> list[Path]:
    """Return the regular files of an existing ``folder`` ending in ``file_ending``, sorted by name.

    Dot-files are skipped: they are the temporary files of unfinished atomic writes (and OS clutter).
    """
    return sorted(
        p for p in Path(folder).iterdir() if p.name.endswith(file_ending) and not p.name.startswith(".") and p.is_file()
    )


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder next to ``path``; on success it replaces ``path`` whole.

    On an error the staging folder is removed and ``path`` (if it existed) stays as it was.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def save_npz_compressed(path: str | os.PathLike, compresslevel: int = 1, **arrays: np.ndarray) -> None:
    """Write ``path`` atomically as an .npz that ``np.load`` reads like ``np.savez_compressed``'s.

    numpy deflates at zlib's default level 6; level 1 writes smooth class probabilities several
    times faster for files a little larger. Float noise hardly compresses at any level (float32
    probabilities of smooth logits: 571 of 629 MB) yet costs zlib about 35 MB/s, so unless samples of
    some array deflate to 75% or less the archive is stored without compression. Either way it is the
    same format (one ``NAME.npy`` per array).
    """
    import zipfile

    arrays = {name: np.asanyarray(array) for name, array in arrays.items()}
    deflate = any(_worth_deflating(array, compresslevel) for array in arrays.values())
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(
            tmp,
            "w",
            zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED,
            compresslevel=compresslevel if deflate else None,
        ) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)


def _worth_deflating(array: np.ndarray, compresslevel: int, chunk_bytes: int = 1 << 20) -> bool:
    """True if four 1 MB samples of ``array`` (spread over it, in C order) deflate to at most 75% of their size."""
    import zlib

    if array.dtype.hasobject or array.size == 0:
        return True
    count = min(array.size, max(1, chunk_bytes // array.itemsize))
    starts = {int(f * (array.size - count)) for f in (0.125, 0.375, 0.625, 0.875)}
    raw = deflated = 0
    for start in starts:
        sample = array.flat[start : start + count].tobytes()  # a copy in C order, also of a transposed view
        raw += len(sample)
        deflated += len(zlib.compress(sample, compresslevel))
    return deflated <= 0.75 * raw
