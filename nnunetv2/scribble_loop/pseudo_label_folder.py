"""Pseudo labels for a folder of cases: images, the network's probabilities and scribble files in;
pseudo labels, confidence maps and a summary of the changes out.

Inputs per case: ``IMAGES/{case}_{channel:04d}{ending}`` (imagesTr style), ``PROBABILITIES/{case}.npz``
holding ``probabilities`` ``(C, *spatial)`` in the image's geometry (what ``nnUNetv2_predict
--save_probabilities`` writes; a region model's sigmoid outputs become label probabilities with
``label_probabilities``), and optionally ``SCRIBBLES/{case}{ending}`` (a case without a scribble
file has no correction). Outputs: ``OUT/{case}{ending}`` (pseudo label, written like a prediction),
``OUT/confidence/{case}_confidence.nii.gz`` (float32 in [0, 1], the image's geometry; ``read_float_map`` of
``nnunetv2.imageio.image_files`` reads it) and
``OUT/summary.json``.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.exceptions import DatasetError, DatasetNotFoundError, ImageIOError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson

if TYPE_CHECKING:
    from nnunetv2.dataset.label_manager import LabelManager

logger = logging.getLogger(__name__)

CONFIDENCE_FOLDER = "confidence"
CONFIDENCE_SUFFIX = "_confidence.nii.gz"
SUMMARY_FILE = "summary.json"
DISTANCE_MAPS_FOLDER = "distance_maps"  # with save_distance_maps: CASE_class{c}.nii.gz


def make_pseudo_labels_for_folder(
    images_folder: str | os.PathLike,
    probabilities_folder: str | os.PathLike,
    scribbles_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    dataset: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
    device=None,
    progress: bool = True,
    previous_pseudo_labels: str | os.PathLike | None = None,
    update_min_probability: float | None = None,
    save_distance_maps: bool = False,
    **rule_parameters: Any,
) -> dict[str, Any]:
    """Write a pseudo label, a confidence map and summary.json for every case of ``images_folder``; return the summary.

    dataset: id, name, dataset.json file or a folder holding one; it sets the file ending, the
    reader-writer, the channels, the labels (a region-based dataset's region probabilities are converted
    to label probabilities) and the default unannotated value (its ignore label, else the highest label
    value + 1). Without it the ending is taken from the images, the probabilities must be per label, and
    the unannotated value defaults to the number of probability channels.
    previous_pseudo_labels: an earlier output folder of this function for the same cases; a voxel then takes
    its new label only where the network gives it at least ``update_min_probability`` (default
    DEFAULT_UPDATE_MIN_PROBABILITY) and otherwise keeps its previous label and confidence
    (``keep_previous_where_unsure``).
    save_distance_maps: also write each growing class's capped geodesic distance D_c as
    ``distance_maps/CASE_class{c}.nii.gz`` (float32, the image's geometry).
    rule_parameters: options of ``geodesic_pseudo_label`` (threshold, lamb, ...).
    """
    from nnunetv2.dataset.cases import group_images_by_case
    from nnunetv2.imageio.image_files import write_float_map
    from nnunetv2.imageio.registry import image_file_ending
    from nnunetv2.scribble_loop.pseudo_label_summary import case_summary, classes_over_cases, warn_about_shrunk_classes
    from nnunetv2.scribble_loop.pseudo_labels import (
        DEFAULT_UPDATE_MIN_PROBABILITY,
        check_update_min_probability,
        geodesic_pseudo_label,
        keep_previous_where_unsure,
        pseudo_label_parameters,
    )
    from nnunetv2.utilities.device import resolve_device
    from nnunetv2.utilities.file_io import save_json
    from nnunetv2.utilities.progress import progress_bar

    parameters = pseudo_label_parameters(**rule_parameters)
    if previous_pseudo_labels is None and update_min_probability is not None:
        raise NnUNetError("pseudo labels: update_min_probability needs the previous pseudo labels (--previous)")
    update_min_probability = (
        DEFAULT_UPDATE_MIN_PROBABILITY if update_min_probability is None else update_min_probability
    )
    check_update_min_probability(update_min_probability)
    images_folder, scribbles_folder = Path(images_folder), Path(scribbles_folder)
    probabilities_folder, output_folder = Path(probabilities_folder), Path(output_folder)
    dataset_json = _load_dataset_json(dataset) if dataset is not None else None
    file_ending = dataset_json.file_ending if dataset_json is not None else image_file_ending(images_folder)
    cases = group_images_by_case(
        images_folder, file_ending, dataset_json.num_channels if dataset_json is not None else None
    )
    if not cases:
        raise DatasetError(f"{images_folder}: no images ending in '{file_ending}'")
    probability_files = _probability_files(probabilities_folder, cases)
    scribble_files = _scribble_files(scribbles_folder, file_ending, cases)
    reader_writer = _reader_writer(dataset_json, file_ending, str(next(iter(cases.values()))[0]))
    previous_files = (
        None if previous_pseudo_labels is None else _previous_files(Path(previous_pseudo_labels), file_ending, cases)
    )
    label_manager = _dataset_labels(dataset_json)
    device = resolve_device(None if device is None else str(device))

    summary_cases = {}
    for case, image_files in progress_bar(cases.items(), desc="pseudo labels", unit="case", disable=not progress):
        image, properties = reader_writer.read_images(image_files)
        probabilities = _load_probabilities(probability_files[case], image.shape[1:], label_manager)
        case_unannotated = _unannotated_value(unannotated_value, label_manager, probabilities.shape[0])
        scribbles = _load_scribbles(
            scribble_files.get(case), reader_writer, image.shape[1:], case_unannotated, label_manager
        )
        distances: dict[int, np.ndarray] | None = {} if save_distance_maps else None
        try:
            label, confidence = geodesic_pseudo_label(
                image,
                probabilities,
                scribbles,
                properties["spacing"],
                case_unannotated,
                device=device,
                distance_maps=distances,
                **parameters,
            )
        except NnUNetError as e:
            raise type(e)(f"case '{case}': {e}") from None
        for class_value, distance in (distances or {}).items():
            write_float_map(
                distance, output_folder / DISTANCE_MAPS_FOLDER / f"{case}_class{class_value}.nii.gz", properties
            )
        kept = None
        if previous_files is not None:
            previous_label, previous_confidence = _load_previous(previous_files[case], reader_writer, label.shape)
            label, confidence, kept = keep_previous_where_unsure(
                label, confidence, probabilities, previous_label, previous_confidence, update_min_probability
            )
        reader_writer.write_seg(label, output_folder / f"{case}{file_ending}", properties)
        write_float_map(confidence, output_folder / CONFIDENCE_FOLDER / f"{case}{CONFIDENCE_SUFFIX}", properties)
        summary_cases[case] = case_summary(
            probabilities.argmax(0), label, scribbles, case_unannotated, confidence, probabilities.shape[0]
        )
        if kept is not None:
            summary_cases[case]["kept_previous_voxels"] = int(kept.sum())
        logger.debug("%s: %d voxels changed", case, summary_cases[case]["changed_voxels"])

    if previous_files is not None:
        parameters = {
            **parameters,
            "previous_pseudo_labels": str(previous_pseudo_labels),
            "update_min_probability": update_min_probability,
        }
    per_class = classes_over_cases(summary_cases)
    summary = {
        "parameters": parameters,
        "total_changed_voxels": sum(c["changed_voxels"] for c in summary_cases.values()),
        "per_class": per_class,
        "shrunk_classes": sorted(c for c, entry in per_class.items() if entry["shrunk"]),
        "cases": summary_cases,
    }
    warn_about_shrunk_classes(summary_cases)
    save_json(summary, output_folder / SUMMARY_FILE)
    return summary


def _load_dataset_json(dataset: str | os.PathLike) -> DatasetJson:
    """dataset.json from a file, a folder holding one, or a dataset id/name (raw, then preprocessed folder)."""
    from nnunetv2 import paths
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    path = Path(dataset)
    if path.is_file():
        return DatasetJson.load(path)
    if path.is_dir():
        return DatasetJson.load(path / "dataset.json")
    name = convert_id_to_dataset_name(str(dataset))
    roots = (paths.raw_folder(), paths.preprocessed_folder())
    for root in roots:
        if (root / name / "dataset.json").is_file():
            return DatasetJson.load(root / name / "dataset.json")
    raise DatasetNotFoundError(f"{name}: no dataset.json in {' or '.join(str(r / name) for r in roots)}")


def _reader_writer(dataset_json: DatasetJson | None, file_ending: str, example_file: str):
    from nnunetv2.imageio.registry import reader_writer_for_dataset, reader_writer_for_ending

    if dataset_json is not None:
        return reader_writer_for_dataset(dataset_json, example_file)()
    return reader_writer_for_ending(file_ending, example_file)()


def _dataset_labels(dataset_json: DatasetJson | None) -> LabelManager | None:
    """The dataset's labels (regions, ignore label), None without a dataset."""
    if dataset_json is None:
        return None
    from nnunetv2.dataset.label_manager import LabelManager

    return LabelManager.from_dataset_json(dataset_json)


def _probability_files(folder: Path, cases: dict[str, list[Path]]) -> dict[str, Path]:
    """``case -> PROBABILITIES/{case}.npz``; every case needs one."""
    if not folder.is_dir():
        raise NnUNetError(f"{folder}: probabilities folder not found")
    files = {case: folder / f"{case}.npz" for case in cases}
    missing = [case for case, f in files.items() if not f.is_file()]
    if missing:
        raise NnUNetError(
            f"{files[missing[0]]}: probabilities of case '{missing[0]}' not found ({len(missing)} of "
            f"{len(files)} cases missing; predict with --save_probabilities)"
        )
    return files


def _scribble_files(folder: Path, file_ending: str, cases: dict[str, list[Path]]) -> dict[str, Path]:
    """``case -> SCRIBBLES/{case}{ending}`` for the cases that have one; a file of no known case is an error."""
    from nnunetv2.utilities.file_io import list_files

    if not folder.is_dir():
        raise NnUNetError(f"{folder}: scribbles folder not found")
    found = {f.name[: -len(file_ending)]: f for f in list_files(folder, file_ending)}
    unknown = sorted(set(found) - set(cases))
    if unknown:
        raise NnUNetError(
            f"{found[unknown[0]]}: scribble file of no case in the images folder (scribbles are "
            f"named CASE{file_ending})"
        )
    without = len(cases) - len(found)
    if without:
        logger.info("%d of %d cases have no scribble file; their pseudo label is the network's", without, len(cases))
    return found


def _previous_files(folder: Path, file_ending: str, cases: dict[str, list[Path]]) -> dict[str, tuple[Path, Path]]:
    """``case -> (PREVIOUS/{case}{ending}, PREVIOUS/confidence/{case}_confidence.nii.gz)``; every case needs both."""
    if not folder.is_dir():
        raise NnUNetError(f"{folder}: previous pseudo-label folder not found")
    files = {
        case: (folder / f"{case}{file_ending}", folder / CONFIDENCE_FOLDER / f"{case}{CONFIDENCE_SUFFIX}")
        for case in cases
    }
    for case, pair in files.items():
        for path in pair:
            if not path.is_file():
                raise NnUNetError(f"{path}: previous pseudo label or confidence of case '{case}' not found")
    return files


def _load_previous(
    files: tuple[Path, Path], reader_writer, spatial_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """A case's previous pseudo label and confidence as ``(*spatial)`` arrays, checked against the image shape."""
    label, _ = reader_writer.read_seg(files[0])
    from nnunetv2.imageio.image_files import read_float_map

    confidence = read_float_map(files[1], type(reader_writer).__name__)
    for path, array in zip(files, (label, confidence)):
        if array.shape[1:] != tuple(spatial_shape):
            raise ImageIOError(
                f"{path}: shape {list(array.shape[1:])} does not match the image shape {list(spatial_shape)}"
            )
    return label[0].astype(np.int64), confidence[0]


def _load_probabilities(path: Path, spatial_shape: tuple[int, ...], label_manager: LabelManager | None) -> np.ndarray:
    """The ``probabilities`` array of an .npz file, checked against the image shape and the dataset's labels or
    regions, as one probability per label value (``label_probabilities``)."""
    try:
        with np.load(path) as content:
            if "probabilities" not in content.files:
                raise NnUNetError(f"{path}: has no 'probabilities' array (found: {', '.join(content.files)})")
            probabilities = content["probabilities"]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise NnUNetError(f"{path}: cannot read this .npz file ({e})") from None
    if probabilities.ndim != len(spatial_shape) + 1 or probabilities.shape[1:] != tuple(spatial_shape):
        raise NnUNetError(
            f"{path}: probabilities of shape {list(probabilities.shape)} do not match the image shape "
            f"{list(spatial_shape)} (expected (classes, {', '.join(map(str, spatial_shape))}))"
        )
    if label_manager is None:
        return probabilities
    from nnunetv2.scribble_loop.label_probabilities import label_probabilities

    expected = label_manager.num_segmentation_heads
    if probabilities.shape[0] != expected:
        kind = "regions" if label_manager.has_regions else "labels"
        raise NnUNetError(
            f"{path}: {probabilities.shape[0]} probability channels, but the dataset has {expected} {kind}"
        )
    return label_probabilities(probabilities, label_manager)


def _unannotated_value(given: int | None, label_manager: LabelManager | None, num_values: int) -> int:
    """The value that marks undrawn voxels: given, else the dataset's ignore label, else the number of label values."""
    if given is not None:
        return given
    ignore_label = None if label_manager is None else label_manager.ignore_label
    return ignore_label if ignore_label is not None else num_values


def _load_scribbles(
    path: Path | None,
    reader_writer,
    spatial_shape: tuple[int, ...],
    unannotated: int,
    label_manager: LabelManager | None,
) -> np.ndarray:
    """The scribble map ``(*spatial)`` of a case; all ``unannotated`` when it has no scribble file.

    Values between the dataset's label values (a region-based dataset may skip some) are refused here; the
    rule itself refuses values that are neither below the number of label values nor ``unannotated``.
    """
    if path is None:
        return np.full(spatial_shape, unannotated, dtype=np.min_scalar_type(unannotated))
    scribbles, _ = reader_writer.read_seg(path)
    if scribbles.shape[1:] != tuple(spatial_shape):
        raise ImageIOError(
            f"{path}: scribbles of shape {list(scribbles.shape[1:])} do not match the image shape {list(spatial_shape)}"
        )
    if not np.issubdtype(scribbles.dtype, np.integer):
        if not np.array_equal(scribbles, np.round(scribbles)):
            raise ImageIOError(f"{path}: scribble values must be whole numbers")
        scribbles = scribbles.astype(np.int64)
    if label_manager is not None:
        values = label_manager.all_labels
        gaps = np.setdiff1d(np.arange(max(values) + 1), values)
        drawn_gaps = np.intersect1d(gaps, scribbles) if gaps.size else gaps
        if drawn_gaps.size:
            raise ImageIOError(
                f"{path}: scribble value {int(drawn_gaps[0])} is not a label value of dataset.json ({values})"
            )
    return scribbles[0]


# public name for other folder commands that take the same -d argument (nnunetv2.annotation, nnunetv2.visualization)
load_dataset_json = _load_dataset_json
