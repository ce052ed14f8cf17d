"""Storage of preprocessed cases: blosc2 arrays for fast random patch reads.

Per case ``{case}.b2nd`` holds the image ``(c, z, y, x)`` float32, ``{case}_seg.b2nd`` the
segmentation ``(1, z, y, x)`` int16 (-1 marks voxels outside the nonzero crop region, as in
nnU-Net v2), ``{case}.json`` the properties and ``{case}_locations.npz`` the sampled voxel
coordinates ``(n, 4)`` per class (or region) used for foreground oversampling.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import PreprocessingError, reason_of
from nnunetv2.utilities.file_io import atomic_path, load_json, save_json

ClassKey = int | tuple[int, ...]


def _key_to_str(key: ClassKey) -> str:
    return ",".join(str(k) for k in key) if isinstance(key, tuple) else str(int(key))


def _str_to_key(text: str) -> ClassKey:
    parts = tuple(int(p) for p in text.split(","))
    return parts if len(parts) > 1 else parts[0]


def _write_blosc2(array: np.ndarray, path: Path) -> None:
    import blosc2

    with atomic_path(path) as tmp:
        tmp.unlink()  # blosc2 refuses to open an existing file in mode 'w' on some versions
        try:
            blosc2.asarray(
                np.ascontiguousarray(array),
                urlpath=str(tmp),
                mode="w",
                cparams={"codec": blosc2.Codec.LZ4, "clevel": 5, "nthreads": 1},
            )
        except RuntimeError as e:  # blosc2 reports a full disk as RuntimeError, without the path
            raise PreprocessingError(f"{path}: cannot write the preprocessed array ({reason_of(e)})") from None


def save_blosc2_array(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write ``array`` to ``path`` as a blosc2 file (LZ4), atomically."""
    _write_blosc2(array, Path(path))


def save_preprocessed_case(
    folder: str | os.PathLike,
    case_id: str,
    data: np.ndarray,
    seg: np.ndarray,
    properties: dict[str, Any],
    class_locations: dict[ClassKey, np.ndarray],
) -> None:
    """Write one preprocessed case; each file appears only once it is complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_blosc2(data.astype(np.float32, copy=False), folder / f"{case_id}.b2nd")
    _write_blosc2(seg.astype(np.int16, copy=False), folder / f"{case_id}_seg.b2nd")
    with atomic_path(folder / f"{case_id}_locations.npz") as tmp:
        with open(tmp, "wb") as f:
            arrays = {_key_to_str(k): np.asarray(v, dtype=np.int32).reshape(-1, 4) for k, v in class_locations.items()}
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stubs read **arrays as allow_pickle
    save_json(properties, folder / f"{case_id}.json")


def load_case_properties(folder: str | os.PathLike, case_id: str) -> dict[str, Any]:
    """Return a case's properties dict, with ``class_locations`` added."""
    folder = Path(folder)
    properties = load_json(folder / f"{case_id}.json")
    with np.load(folder / f"{case_id}_locations.npz") as z:
        properties["class_locations"] = {_str_to_key(k): z[k] for k in z.files}
    return properties


def open_preprocessed_case(folder: str | os.PathLike, case_id: str):
    """Return ``(data, seg)`` as lazily decompressed blosc2 arrays; slicing yields numpy."""
    import blosc2

    folder = Path(folder)
    path = folder / f"{case_id}.b2nd"
    if not path.is_file():
        raise PreprocessingError(f"{path}: preprocessed case not found (run nnUNetv2_preprocess)")
    data = blosc2.open(str(path), mode="r", mmap_mode="r")
    seg = blosc2.open(str(folder / f"{case_id}_seg.b2nd"), mode="r", mmap_mode="r")
    return data, seg


def load_preprocessed_case(folder: str | os.PathLike, case_id: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return ``(data, seg, properties)`` fully loaded into memory."""
    data, seg = open_preprocessed_case(folder, case_id)
    return data[:], seg[:], load_case_properties(folder, case_id)


def list_preprocessed_cases(folder: str | os.PathLike) -> list[str]:
    """Return the sorted case ids present in a preprocessed data folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PreprocessingError(f"{folder}: preprocessed data folder not found (run nnUNetv2_preprocess)")
    return sorted(
        p.name[: -len(".json")]
        for p in folder.glob("*.json")
        if (folder / (p.name[: -len(".json")] + ".b2nd")).is_file()
    )


# written first (complete: false) and rewritten last (complete: true) by nnUNetv2_preprocess, so a run that
# was killed, or failed half-way, is visible to training; folders without one (made by hand) are taken as they are
PREPROCESSING_RECORD_NAME = "preprocessing_record.json"


def write_preprocessing_record(folder: str | os.PathLike, case_ids: Sequence[str], complete: bool) -> None:
    """Record which cases a preprocessing run writes into ``folder`` and whether it finished."""
    save_json({"complete": bool(complete), "cases": sorted(case_ids)}, Path(folder) / PREPROCESSING_RECORD_NAME)


def list_complete_preprocessed_cases(folder: str | os.PathLike) -> list[str]:
    """Return the case ids of a preprocessed data folder; raise PreprocessingError if its preprocessing is unfinished.

    The error names the missing cases, so training never builds splits (or trains) from part of a dataset.
    """
    folder = Path(folder)
    present = list_preprocessed_cases(folder)
    record_file = folder / PREPROCESSING_RECORD_NAME
    if not record_file.is_file():
        return present
    record = load_json(record_file)
    expected = record.get("cases", []) if isinstance(record, dict) else []
    missing = sorted(set(expected) - set(present))
    if missing or not (isinstance(record, dict) and record.get("complete")):
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        what = f"{len(missing)} of {len(expected)} cases are missing ({shown})" if missing else "it did not finish"
        raise PreprocessingError(
            f"{folder}: preprocessing is incomplete: {what}; run nnUNetv2_preprocess (or plan_and_preprocess) again"
        )
    return present


def remove_preprocessed_case(folder: str | os.PathLike, case_id: str) -> None:
    """Delete a case's files from a preprocessed data folder (missing files are fine)."""
    folder = Path(folder)
    for name in (f"{case_id}.b2nd", f"{case_id}_seg.b2nd", f"{case_id}_locations.npz", f"{case_id}.json"):
        (folder / name).unlink(missing_ok=True)


def sample_class_locations(
    seg: np.ndarray, keys: Sequence[ClassKey], max_per_class: int = 10000, min_fraction: float = 0.01, seed: int = 1234
) -> dict[ClassKey, np.ndarray]:
    """Return up to ``max_per_class`` random ``(n, 4)`` coordinates per class/region in ``seg`` (1, ...).

    At least ``min_fraction`` of a class' voxels are kept, as in nnU-Net v2, so large classes are
    well covered while small ones keep every voxel up to the cap.
    """
    rng = np.random.default_rng(seed)
    result: dict[ClassKey, np.ndarray] = {}
    for key in keys:
        mask = np.isin(seg, key) if isinstance(key, tuple) else seg == key
        coords = np.argwhere(mask)
        n_take = min(len(coords), max(max_per_class, int(np.ceil(len(coords) * min_fraction))))
        if n_take < len(coords):
            coords = coords[rng.choice(len(coords), n_take, replace=False)]
        result[key] = coords.astype(np.int32)
    return result
