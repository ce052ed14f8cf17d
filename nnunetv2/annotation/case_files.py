"""Find and read the per-case files of a folder: segmentations, scribbles, uncertainty maps, case scores.

Shared by the worklist (annotation) and the overlay/report (visualization) commands. A folder holds
at most one file per case and kind, named ``{case}{suffix}{ending}`` with any image ending a
reader-writer supports (``.nii.gz``, ``.png``, ...); bookkeeping files (json, csv, npz, ...) are skipped.

Uncertainty maps come in two layouts:
- the output folder of nnUNetv2_uncertainty: ``uncertainty_maps/{case}{ending}`` (integers, the
  uncertainty times its ``map_scale``), the ensemble segmentations ``{case}{ending}`` beside it, the
  score table ``uncertainty_scores.json`` and a dataset.json;
- any folder of float maps ``{case}_uncertainty{ending}`` (optionally with ``scores.json``/``.csv``).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import DatasetError, ImageIOError, NnUNetError
from nnunetv2.utilities.parameters import check_number

UNCERTAINTY_SUFFIX = "_uncertainty"
SCORE_STEMS = ("scores",)  # scores.json / scores.csv of other tools


def index_case_files(folder: str | os.PathLike, suffix: str = "", what: str = "files") -> dict[str, Path]:
    """Return ``case -> file`` for the image files ``{case}{suffix}{ending}`` of ``folder`` (sorted by case)."""
    from nnunetv2.imageio.registry import file_ending_of, is_image_file_name
    from nnunetv2.utilities.file_io import list_files

    folder = Path(folder)
    if not folder.is_dir():
        raise NnUNetError(f"{folder}: {what} folder not found")
    found: dict[str, Path] = {}
    for path in list_files(folder):
        name = path.name
        if not is_image_file_name(name):
            continue
        stem = name[: len(name) - len(file_ending_of(name))]
        if not stem.endswith(suffix) or (suffix and stem == suffix):
            continue
        case = stem[: len(stem) - len(suffix)] if suffix else stem
        if case in found:
            raise NnUNetError(f"{folder}: case '{case}' has two {what} ({found[case].name} and {name})")
        found[case] = path
    return dict(sorted(found.items()))


@cache
def _reader_writer(ending: str, overwrite: str | None):
    from nnunetv2.imageio.registry import reader_writer_class_from_name, reader_writer_for_ending

    return (reader_writer_class_from_name(overwrite) if overwrite else reader_writer_for_ending(ending))()


def reader_writer_for_file(path: str | os.PathLike, reader_writer_name: str | None = None):
    """Return a reader-writer instance for ``path`` (by ending, or the named one, e.g. a dataset's override)."""
    from nnunetv2.imageio.registry import file_ending_of, reader_writer_for_ending

    ending = file_ending_of(str(path))
    if ending in (".tif", ".tiff") and not reader_writer_name:
        return reader_writer_for_ending(ending, str(path))()  # a spacing sidecar selects the 3D TIFF reader
    return _reader_writer(ending, reader_writer_name)


def read_segmentation(path: str | os.PathLike, reader_writer_name: str | None = None) -> tuple[np.ndarray, dict]:
    """Return ``(label map (z, y, x) of integers, properties)`` of a segmentation file."""
    seg, properties = reader_writer_for_file(path, reader_writer_name).read_seg(path)
    seg = seg[0]
    if not np.issubdtype(seg.dtype, np.integer):
        if not np.array_equal(seg, np.round(seg)):
            raise ImageIOError(f"{path}: a label map must hold whole numbers")
        seg = seg.astype(np.int64)
    return seg, properties


def read_float_map(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Return ``(map (z, y, x) float32, properties)`` of a one-channel image file (e.g. an uncertainty map)."""
    image, properties = reader_writer_for_file(path).read_images([path])
    if image.shape[0] != 1:
        raise ImageIOError(f"{path}: expected a one-channel map, got {image.shape[0]} channels")
    return image[0], properties


@dataclass(frozen=True)
class UncertaintySource:
    """Where a folder keeps its uncertainty maps and how to read them."""

    maps: dict[str, Path]  # case -> map file
    scale: float | None  # stored value / scale = uncertainty (integer maps); None: float maps stored as they are
    segmentations_folder: Path | None  # the ensemble segmentations next to the maps (nnUNetv2_uncertainty)
    measure: str | None = None  # the uncertainty measure the maps hold, when the folder's score table names it


def find_uncertainty_maps(folder: str | os.PathLike) -> UncertaintySource:
    """Return the uncertainty maps of ``folder`` in either layout (see the module docstring)."""
    from nnunetv2.uncertainty.ensemble_uncertainty import MAP_SCALE, MAPS_FOLDER
    from nnunetv2.uncertainty.score_report import TABLE_NAME
    from nnunetv2.utilities.file_io import load_json

    folder = Path(folder)
    if (folder / MAPS_FOLDER).is_dir():
        table = folder / f"{TABLE_NAME}.json"
        settings = load_json(table) if table.is_file() else {}
        scale = settings.get("map_scale", MAP_SCALE) if isinstance(settings, dict) else MAP_SCALE
        check_number("'map_scale'", scale, "> 0", where=str(table), error=DatasetError)
        maps = index_case_files(folder / MAPS_FOLDER, what="uncertainty maps")
        measure = settings.get("measure") if isinstance(settings, dict) else None
        return UncertaintySource(maps, float(scale), folder, measure if isinstance(measure, str) else None)
    maps = index_case_files(folder, UNCERTAINTY_SUFFIX, "uncertainty maps")
    if not maps:
        raise NnUNetError(
            f"{folder}: no uncertainty maps (neither {MAPS_FOLDER}/CASE.ending as written by "
            f"nnUNetv2_uncertainty nor CASE{UNCERTAINTY_SUFFIX}.ending files)"
        )
    return UncertaintySource(maps, None, None)


def read_uncertainty_map(
    path: str | os.PathLike, source: UncertaintySource, reader_writer_name: str | None = None
) -> tuple[np.ndarray, dict]:
    """Return ``(uncertainty (z, y, x) float32, properties)`` of one map of ``source``."""
    if source.scale is None:
        return read_float_map(path)
    stored, properties = read_segmentation(path, reader_writer_name)
    return (stored / source.scale).astype(np.float32), properties


def load_case_scores(folder: str | os.PathLike) -> dict[str, float]:
    """Return ``case -> uncertainty score`` from the score table in ``folder``; {} if there is none.

    Looked for: nnUNetv2_uncertainty's ``uncertainty_scores.json``/``.csv``, then ``scores.json``/``.csv``.
    JSON layouts: ``{case: score}``, ``{case: {"score": ...}}``, ``{"cases": <either, or a list>}``, a list of
    ``{"case": ..., "score": ...}`` objects; a CSV needs ``case`` and ``score`` columns.
    """
    from nnunetv2.uncertainty.score_report import TABLE_NAME
    from nnunetv2.utilities.file_io import load_json

    folder = Path(folder)
    for stem in (TABLE_NAME, *SCORE_STEMS):
        json_file, csv_file = folder / f"{stem}.json", folder / f"{stem}.csv"
        if json_file.is_file():
            return _scores_from_json(load_json(json_file), json_file)
        if csv_file.is_file():
            with open(csv_file, newline="") as f:
                rows = list(csv.DictReader(f))
            return _scores_from_records(rows, csv_file)
    return {}


def _scores_from_json(content: Any, path: Path) -> dict[str, float]:
    if isinstance(content, dict) and "cases" in content:
        content = content["cases"]
    if isinstance(content, list):
        return _scores_from_records(content, path)
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected case scores as an object or a list")
    return {case: _score(value, path, case) for case, value in content.items()}


def _scores_from_records(records: list, path: Path) -> dict[str, float]:
    scores = {}
    for record in records:
        if not isinstance(record, dict) or "case" not in record:
            raise DatasetError(f"{path}: every row needs a 'case' and a 'score'")
        scores[str(record["case"])] = _score(record, path, str(record["case"]))
    return scores


def _score(value: Any, path: Path, case: str) -> float:
    if isinstance(value, dict):
        value = value.get("score", value.get("uncertainty_score"))
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score) or isinstance(value, bool):
        raise DatasetError(f"{path}: the score of case '{case}' is not a number ({value!r})")
    return score


def dataset_json_for(dataset: str | os.PathLike | None, *folders: str | os.PathLike | None):
    """Return the DatasetJson named by ``dataset`` (id, name, file or folder), else the dataset.json found in the
    first of ``folders`` that has one (prediction folders carry a copy), else None."""
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.scribble_loop.pseudo_label_folder import load_dataset_json

    if dataset is not None:
        return load_dataset_json(dataset)
    for folder in folders:
        if folder is not None and (Path(folder) / "dataset.json").is_file():
            return DatasetJson.load(Path(folder) / "dataset.json")
    return None


def unannotated_value_for(given: int | None, dataset_json, scribbles_folder: str | os.PathLike | None) -> int:
    """The value of undrawn voxels in scribble files: given, else the dataset's ignore label, else its number of
    labels (the scribble-file convention of nnUNetv2_scribble_pseudolabels)."""
    if given is not None:
        return int(given)
    if dataset_json is None:
        raise NnUNetError(
            f"{scribbles_folder}: cannot tell scribbled from unannotated voxels; pass the unannotated "
            f"value (--unannotated) or the dataset (-d)"
        )
    from nnunetv2.dataset.label_manager import LabelManager

    labels = LabelManager.from_dataset_json(dataset_json)
    return labels.ignore_label if labels.ignore_label is not None else len(labels.all_labels)
