"""Check a raw dataset before planning: dataset.json, file names, geometry and label values.

Every problem raises DatasetError with one line naming the file or case. Nothing is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.cases import list_training_cases
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.utilities.file_io import list_files

logger = logging.getLogger(__name__)

# a pool only pays off when there are many files to read
_MIN_CASES_FOR_POOL = 16
# geometry is stored as float in the headers; differences below these are rounding
_GEOMETRY_RTOL, _GEOMETRY_ATOL = 1e-4, 1e-4


def _load_dataset_json(folder: Path) -> DatasetJson:
    path = folder / "dataset.json"
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder not found")
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return DatasetJson.load(path)
    except DatasetError:
        raise
    except NnUNetError as e:  # unreadable JSON is a dataset problem here
        raise DatasetError(str(e)) from None


def _check_file_endings(folder: Path, file_ending: str) -> None:
    for sub in ("imagesTr", "labelsTr"):
        if not (folder / sub).is_dir():
            continue
        for f in list_files(folder / sub):
            if not f.name.endswith(file_ending):
                raise DatasetError(f"{f}: does not end in the dataset's file_ending '{file_ending}'")


def _check_case_files(folder: Path, dataset_json: DatasetJson, cases: dict[str, dict]) -> None:
    if dataset_json.num_training != len(cases):
        raise DatasetError(
            f"{folder / 'dataset.json'}: numTraining is {dataset_json.num_training} "
            f"but the dataset has {len(cases)} training cases"
        )
    for case, entry in cases.items():
        for image in entry["images"]:
            if not image.is_file():
                raise DatasetError(f"{image}: image of case '{case}' not found")
        if not entry["label"].is_file():
            raise DatasetError(f"{entry['label']}: label of case '{case}' not found")
    labels_folder = folder / "labelsTr"
    if dataset_json.dataset is None and labels_folder.is_dir():
        ending = dataset_json.file_ending
        for f in list_files(labels_folder, ending):
            if f.name[: -len(ending)] not in cases:
                raise DatasetError(f"{f}: label has no images in imagesTr")


def _numeric_leaves(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """Yield (dotted key, array) for every numeric entry, however a reader-writer nests them."""
    for key, value in properties.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _numeric_leaves(value, name + ".")
            continue
        if isinstance(value, (str, bytes, bool)):
            continue
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
        yield name, array


def _geometry_difference(image_properties: dict, label_properties: dict) -> str | None:
    """Describe the first geometry entry (spacing, origin, direction, affine...) that differs."""
    label_leaves = dict(_numeric_leaves(label_properties))
    for key, image_value in _numeric_leaves(image_properties):
        label_value = label_leaves.get(key)
        if label_value is None:
            continue
        if label_value.shape != image_value.shape or not np.allclose(
            image_value, label_value, rtol=_GEOMETRY_RTOL, atol=_GEOMETRY_ATOL
        ):
            return (
                f"{key.rsplit('.', 1)[-1]} of the label {np.round(label_value, 4).tolist()} differs "
                f"from the images' {np.round(image_value, 4).tolist()}"
            )
    return None


def _label_values(seg: np.ndarray) -> np.ndarray:
    if np.issubdtype(seg.dtype, np.integer) and seg.size and seg.min() >= 0:
        return np.flatnonzero(np.bincount(seg.ravel()))  # linear time, no sort
    return np.unique(seg)


def _check_case(
    case: str,
    image_files: Sequence[Path],
    label_file: Path,
    reader_writer_class,
    num_channels: int,
    declared_values: Sequence[int],
) -> str | None:
    """Return one line describing the first problem of a case, or None when it is fine."""
    reader_writer = reader_writer_class()
    try:
        images, image_properties = reader_writer.read_images([str(f) for f in image_files])
        seg, label_properties = reader_writer.read_seg(str(label_file))
    except NnUNetError as e:
        return f"case '{case}': {e}"
    except (RuntimeError, OSError, ValueError) as e:  # a backend's own error for a broken file
        lines = str(e).strip().splitlines() or [type(e).__name__]
        return f"case '{case}': cannot read its files ({lines[-1].strip()})"
    if images.shape[0] != num_channels:
        return f"case '{case}': images have {images.shape[0]} channel(s) but channel_names lists {num_channels}"
    if seg.shape[1:] != images.shape[1:]:
        return (
            f"case '{case}': label shape {list(seg.shape[1:])} differs from image shape "
            f"{list(images.shape[1:])} ({label_file.name})"
        )
    difference = _geometry_difference(image_properties, label_properties)
    if difference:
        return f"case '{case}': {difference} ({label_file.name})"
    if not np.isfinite(images).all():
        bad_channel = int(np.flatnonzero(~np.isfinite(images).reshape(len(images), -1).all(1))[0])
        return f"case '{case}': image channel {bad_channel} contains NaN or inf values"
    undeclared = np.setdiff1d(_label_values(seg), declared_values)
    if undeclared.size:
        shown = [int(v) if float(v).is_integer() else float(v) for v in undeclared[:10]]
        return f"case '{case}': {label_file.name} contains label values not declared in dataset.json: {shown}"
    return None


def _check_case_star(arguments: tuple) -> str | None:
    return _check_case(*arguments)


def verify_dataset_integrity(raw_dataset_folder: str | os.PathLike, num_processes: int = 1) -> None:
    """Raise DatasetError describing the first problem of a raw dataset; return None when it is sound."""
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    folder = Path(raw_dataset_folder)
    dataset_json = _load_dataset_json(folder)
    label_manager = LabelManager(
        dataset_json.labels, dataset_json.regions_class_order, source=str(folder / "dataset.json")
    )
    _check_file_endings(folder, dataset_json.file_ending)
    cases = list_training_cases(folder, dataset_json)
    _check_case_files(folder, dataset_json, cases)
    if not cases:
        raise DatasetError(f"{folder}: the dataset has no training cases")

    first_image = str(next(iter(cases.values()))["images"][0])
    reader_writer_class = reader_writer_for_dataset(dataset_json, first_image)
    declared = label_manager.all_labels + ([label_manager.ignore_label] if label_manager.has_ignore_label else [])
    jobs = [
        (case, entry["images"], entry["label"], reader_writer_class, dataset_json.num_channels, declared)
        for case, entry in cases.items()
    ]
    logger.info("verifying %d cases of %s", len(jobs), folder.name)
    if num_processes > 1 and len(jobs) >= _MIN_CASES_FOR_POOL:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(num_processes, len(jobs))) as pool:
            problems = [p for p in pool.imap(_check_case_star, jobs, chunksize=4) if p]
    else:
        problems = [p for p in map(_check_case_star, jobs) if p]
    if problems:
        for problem in problems[1:]:
            logger.error(problem)
        more = f" (and {len(problems) - 1} more problem(s), logged above)" if len(problems) > 1 else ""
        raise DatasetError(problems[0] + more)
    logger.info("%s: dataset is sound", folder.name)
