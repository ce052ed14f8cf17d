"""Gather what is drawn per case (image, segmentation, uncertainty, scribbles) from folders or a raw dataset."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.annotation.case_files import UncertaintySource
from nnunetv2.exceptions import DatasetError, NnUNetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseLayers:
    """One case's arrays, all ``(z, y, x)`` in the same geometry."""

    image: np.ndarray
    spacing: Sequence[float]
    segmentation: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    scribbles: np.ndarray | None = None
    unannotated: int | None = None
    hidden_labels: tuple[int, ...] = ()  # labels not coloured (the ignore label)
    reference: np.ndarray | None = None  # reference labels, drawn in a panel of their own
    properties: Mapping[str, Any] = field(default_factory=dict)  # the image's geometry (imageio properties)
    label_names: Mapping[int, str] = field(default_factory=dict)  # foreground label -> name
    heat_map_name: str = "uncertainty"  # what the uncertainty map measures (the colour bar's name)
    segmentation_title: str = "labels"  # the title of the segmentation's panel


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case: its image channels and (optionally) a segmentation."""

    images: tuple[Path, ...]
    segmentation: Path | None


@dataclass
class OverlayInputs:
    """Every case to draw and the optional layers, with how to read them."""

    cases: dict[str, CaseFiles]
    reader_name: str | None = None  # the dataset's reader-writer override
    hidden_labels: tuple[int, ...] = ()  # the ignore label, not coloured
    label_names: dict[int, str] = field(default_factory=dict)  # foreground label -> name
    uncertainty: UncertaintySource | None = None
    scribbles: dict[str, Path] = field(default_factory=dict)
    unannotated: int | None = None
    references: dict[str, Path] = field(default_factory=dict)  # reference labels, a panel beside the segmentation
    segmentation_title: str = "labels"  # "prediction" when references are given

    @property
    def heat_map_name(self) -> str:
        """The colour bar's name: the uncertainty measure, when the maps' folder names it."""
        measure = self.uncertainty.measure if self.uncertainty is not None else None
        return f"uncertainty ({measure})" if measure else "uncertainty"


def folder_inputs(
    images_folder: str | os.PathLike,
    segs_folder: str | os.PathLike | None,
    dataset: str | os.PathLike | None = None,
    uncertainty_folder: str | os.PathLike | None = None,
    scribbles_folder: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
) -> OverlayInputs:
    """Inputs from ``IMAGES/{case}_{XXXX}{ending}`` and ``SEGS/{case}{ending}`` (labels or predictions).

    With a segmentation folder only its cases are drawn; the dataset (id, name or dataset.json; default:
    the dataset.json in SEGS) gives the file ending, the reader and the ignore label.
    """
    from nnunetv2.annotation.case_files import dataset_json_for, index_case_files
    from nnunetv2.dataset.cases import group_images_by_case
    from nnunetv2.imageio.registry import image_file_ending

    dataset_json = dataset_json_for(dataset, segs_folder, uncertainty_folder)
    ending = dataset_json.file_ending if dataset_json is not None else image_file_ending(images_folder)
    images = group_images_by_case(images_folder, ending, dataset_json.num_channels if dataset_json else None)
    if not images:
        raise DatasetError(f"{images_folder}: no images named CASE_XXXX{ending}")
    if segs_folder is None:
        cases = {case: CaseFiles(tuple(files), None) for case, files in images.items()}
    else:
        segs = index_case_files(segs_folder, what="segmentations")
        cases = {case: CaseFiles(tuple(images[case]), segs[case]) for case in images if case in segs}
        if not cases:
            raise NnUNetError(f"{segs_folder}: no segmentation matches a case of {images_folder}")
        if len(cases) < len(images):
            logger.info(
                "%d of %d cases have no segmentation in %s and are skipped",
                len(images) - len(cases),
                len(images),
                segs_folder,
            )
    return _with_layers(cases, dataset_json, uncertainty_folder, scribbles_folder, unannotated_value)


def raw_dataset_inputs(
    dataset: str | os.PathLike,
    uncertainty_folder: str | os.PathLike | None = None,
    scribbles_folder: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
) -> OverlayInputs:
    """Inputs from the training cases of a raw dataset (``nnUNet_raw/DatasetXXX``: imagesTr + labelsTr)."""
    from nnunetv2 import paths
    from nnunetv2.dataset.cases import list_training_cases
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    folder = paths.raw_folder() / convert_id_to_dataset_name(str(dataset))
    dataset_json = DatasetJson.load(folder / "dataset.json")
    training = list_training_cases(folder, dataset_json)
    if not training:
        raise DatasetError(f"{folder}: no training cases")
    cases = {case: CaseFiles(tuple(entry["images"]), entry["label"]) for case, entry in training.items()}
    return _with_layers(cases, dataset_json, uncertainty_folder, scribbles_folder, unannotated_value)


def _with_layers(
    cases: dict[str, CaseFiles], dataset_json, uncertainty_folder, scribbles_folder, unannotated_value
) -> OverlayInputs:
    from nnunetv2.annotation.case_files import find_uncertainty_maps, index_case_files, unannotated_value_for

    inputs = OverlayInputs(cases)
    if dataset_json is not None:
        from nnunetv2.dataset.label_manager import LabelManager

        label_manager = LabelManager.from_dataset_json(dataset_json)
        inputs.reader_name = dataset_json.overwrite_image_reader_writer
        inputs.hidden_labels = () if label_manager.ignore_label is None else (label_manager.ignore_label,)
        inputs.label_names = {
            v: k for k, v in dataset_json.labels.items() if isinstance(v, int) and v in label_manager.foreground_labels
        }
    if uncertainty_folder is not None:
        inputs.uncertainty = find_uncertainty_maps(uncertainty_folder)
    if scribbles_folder is not None:
        inputs.scribbles = index_case_files(scribbles_folder, what="scribble files")
        inputs.unannotated = unannotated_value_for(unannotated_value, dataset_json, scribbles_folder)
    return inputs


def image_channel(image: np.ndarray, channel_idx: int, source: str | os.PathLike) -> np.ndarray:
    """Return channel ``channel_idx`` of a ``(c, z, y, x)`` image."""
    if channel_idx >= image.shape[0]:
        raise DatasetError(f"{source}: channel {channel_idx} requested, but the image has {image.shape[0]} channel(s)")
    return image[channel_idx]


def load_case_layers(inputs: OverlayInputs, case: str, channel_idx: int) -> CaseLayers:
    """Read one case's image channel and its layers, checking that all have the image's shape."""
    from nnunetv2.annotation.case_files import read_segmentation, read_uncertainty_map, reader_writer_for_file

    files = inputs.cases[case]
    image, properties = reader_writer_for_file(files.images[0], inputs.reader_name).read_images(files.images)
    image = image_channel(image, channel_idx, files.images[0])
    shape = image.shape

    def matching(array: np.ndarray, path: Path) -> np.ndarray:
        if array.shape != shape:
            raise NnUNetError(
                f"{path}: shape {list(array.shape)} differs from the image's {list(shape)} ({files.images[0].name})"
            )
        return array

    segmentation = None
    if files.segmentation is not None:
        segmentation = matching(read_segmentation(files.segmentation, inputs.reader_name)[0], files.segmentation)
    uncertainty = None
    if inputs.uncertainty is not None and case in inputs.uncertainty.maps:
        path = inputs.uncertainty.maps[case]
        uncertainty = matching(read_uncertainty_map(path, inputs.uncertainty, inputs.reader_name)[0], path)
    scribbles = None
    if case in inputs.scribbles:
        scribbles = matching(read_segmentation(inputs.scribbles[case], inputs.reader_name)[0], inputs.scribbles[case])
    reference = None
    if case in inputs.references:
        reference = matching(read_segmentation(inputs.references[case], inputs.reader_name)[0], inputs.references[case])
    return CaseLayers(
        image,
        properties["spacing"],
        segmentation,
        uncertainty,
        scribbles,
        inputs.unannotated,
        inputs.hidden_labels,
        reference=reference,
        properties=properties,
        label_names=inputs.label_names,
        heat_map_name=inputs.heat_map_name,
        segmentation_title=inputs.segmentation_title,
    )
