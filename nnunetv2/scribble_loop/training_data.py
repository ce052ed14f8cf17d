"""The preprocessed training data of one loop round: the fully labeled cases plus the pool's pseudo labels.

Pool cases go through the plans' own preprocessor with the pseudo label as their segmentation. Their
confidence map is brought into the same preprocessed geometry (transposed, cropped to the case's
nonzero box, resampled like probabilities: linear) and stored next to the case; the scribbled voxels
are mapped to preprocessed voxel coordinates and stored too (``nnunetv2.dataset.preprocessed_confidence``).
Fully labeled cases are copied from the dataset's preprocessed folder unchanged (no confidence: 1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.preprocessed_case import list_preprocessed_cases, load_preprocessed_case, save_preprocessed_case
from nnunetv2.dataset.preprocessed_confidence import save_case_confidence, save_scribble_locations
from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PseudoLabeledCase:
    """One pool case in raw form: its images, pseudo label, confidence map and (optional) scribbles."""

    case_id: str
    image_files: tuple[Path, ...]
    pseudo_label_file: Path
    confidence_file: Path
    scribble_file: Path | None
    unannotated_value: int


def build_round_training_data(
    output_folder: str | os.PathLike,
    plans: Plans,
    configuration: ConfigurationPlans,
    dataset_json: DatasetJson,
    labeled_data_folder: str | os.PathLike,
    pool_cases: Sequence[PseudoLabeledCase],
    show_progress: bool = True,
) -> list[str]:
    """Write a preprocessed dataset folder (``dataset.json``, plans, ``<data_identifier>/``) of the labeled and
    pool cases into ``output_folder``; return the case ids."""
    from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name
    from nnunetv2.utilities.progress import progress_bar

    output_folder = Path(output_folder)
    data_folder = output_folder / configuration.data_identifier
    labeled = check_pool_case_names(labeled_data_folder, [c.case_id for c in pool_cases])
    for case_id in progress_bar(labeled, desc="labeled cases", unit="case", disable=not show_progress):
        data, seg, properties = load_preprocessed_case(labeled_data_folder, case_id)
        save_preprocessed_case(data_folder, case_id, data, seg, properties, properties.pop("class_locations"))

    preprocessor = preprocessor_class_from_name(configuration.preprocessor_name)()
    for case in progress_bar(pool_cases, desc="pseudo-labeled cases", unit="case", disable=not show_progress):
        try:
            pool_data, pool_seg, pool_properties = preprocessor.run_case(
                [str(f) for f in case.image_files], str(case.pseudo_label_file), plans, configuration, dataset_json
            )
            assert pool_seg is not None, "a pseudo label file was given"
            locations = pool_properties.pop("class_locations")
            save_preprocessed_case(data_folder, case.case_id, pool_data, pool_seg, pool_properties, locations)
            confidence = _confidence_in_preprocessed_geometry(
                case.confidence_file, pool_properties, plans, configuration, pool_data.shape[1:]
            )
            save_case_confidence(data_folder, case.case_id, confidence)
            if case.scribble_file is not None:
                save_scribble_locations(
                    data_folder,
                    case.case_id,
                    _scribbled_voxels_in_preprocessed_geometry(
                        case.scribble_file, case.unannotated_value, pool_properties, plans, pool_data.shape[1:]
                    ),
                )
        except NnUNetError as e:
            raise type(e)(f"case '{case.case_id}': {e}") from None
    dataset_json.save(output_folder / "dataset.json")
    plans.save(output_folder / f"{plans.plans_name}.json")
    return sorted(labeled + [c.case_id for c in pool_cases])


def check_pool_case_names(labeled_data_folder: str | os.PathLike, pool_case_ids: Sequence[str]) -> list[str]:
    """Return the labeled case ids; a pool case named like one of them is an error (one training folder holds both)."""
    labeled = list_preprocessed_cases(labeled_data_folder)
    clash = sorted(set(labeled) & set(pool_case_ids))
    if clash:
        raise DatasetError(
            f"pool case '{clash[0]}' has the name of a labeled case in {labeled_data_folder}; rename the pool's files"
        )
    return labeled


def _transposed_and_cropped(array: np.ndarray, properties: dict[str, Any], plans: Plans, path: Path) -> np.ndarray:
    """``(c, *raw spatial)`` -> the preprocessor's transposed axis order, cropped to the case's nonzero box."""
    transposed = array.transpose([0] + [a + 1 for a in plans.transpose_forward])
    if list(transposed.shape[1:]) != list(properties["shape_before_cropping"]):
        image_shape = [properties["shape_before_cropping"][a] for a in np.argsort(plans.transpose_forward)]
        raise DatasetError(f"{path}: shape {list(array.shape[1:])} does not match its image's shape {image_shape}")
    box = tuple(slice(int(low), int(high)) for low, high in properties["bbox_used_for_cropping"])
    return transposed[(slice(None),) + box]


def _confidence_in_preprocessed_geometry(
    path: Path, properties: dict[str, Any], plans: Plans, configuration: ConfigurationPlans, shape: Sequence[int]
) -> np.ndarray:
    """The confidence map as ``(1, *shape)`` float32 in [0, 1], resampled like probabilities."""
    from nnunetv2.imageio.image_files import read_float_map
    from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor
    from nnunetv2.preprocessing.resampling import resampling_function_by_name

    cropped = _transposed_and_cropped(read_float_map(path, plans.image_reader_writer), properties, plans, path)
    spacing = [float(properties["spacing"][a]) for a in plans.transpose_forward]
    target = DefaultPreprocessor.target_spacing(spacing, configuration)
    resample = resampling_function_by_name(configuration.resampling_fn_probabilities)
    resampled = resample(cropped, list(shape), spacing, target, **configuration.resampling_fn_probabilities_kwargs)
    return np.clip(resampled, 0.0, 1.0).astype(np.float32, copy=False)


def _scribbled_voxels_in_preprocessed_geometry(
    path: Path, unannotated_value: int, properties: dict[str, Any], plans: Plans, shape: Sequence[int]
) -> np.ndarray:
    """``(n, 3)`` preprocessed voxels that hold a scribbled raw voxel's centre (each listed once)."""
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    scribbles, _ = reader_writer_class_from_name(plans.image_reader_writer)().read_seg(path)
    cropped = _transposed_and_cropped(scribbles, properties, plans, path)[0]
    coordinates = np.argwhere(cropped != unannotated_value)
    # a voxel centre keeps its relative position when the box is resampled to the preprocessed shape
    scale = np.asarray(shape, dtype=float) / np.asarray(cropped.shape, dtype=float)
    mapped = np.floor((coordinates + 0.5) * scale).astype(np.int64)
    mapped = np.minimum(mapped, np.asarray(shape) - 1)
    return np.unique(mapped, axis=0)
