"""Turn raw cases into network-ready arrays: crop, transpose, normalize, resample (nnU-Net v2's order).

``DefaultPreprocessor`` handles one case (training or prediction); ``preprocess_dataset`` runs it
over a raw dataset for several configurations. A case is read and cropped once for all
configurations, and configurations that would produce identical arrays (e.g. 2d and 3d_fullres
when the fullres spacing keeps the slice spacing) share one computation.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2 import paths
from nnunetv2.dataset.case_checks import geometry_problem, is_2d, label_value_problem, nonfinite_problem
from nnunetv2.dataset.cases import list_training_cases
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import (
    ClassKey,
    list_preprocessed_cases,
    remove_preprocessed_case,
    sample_class_locations,
    save_preprocessed_case,
    write_preprocessing_record,
)
from nnunetv2.exceptions import DatasetError, NnUNetError, PlansError, PreprocessingError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans, as_configuration_plans, as_plans
from nnunetv2.imageio.base_reader_writer import SPACING_OF_MISSING_AXIS
from nnunetv2.imageio.registry import reader_writer_class_from_name
from nnunetv2.preprocessing.cropping import OUTSIDE_NONZERO_LABEL, crop_to_nonzero
from nnunetv2.preprocessing.normalization import normalization_class_from_name
from nnunetv2.preprocessing.resampling import compute_new_shape, resampling_function_by_name
from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
from nnunetv2.utilities.file_io import atomic_path
from nnunetv2.utilities.process_pool import spawn_executor

logger = logging.getLogger(__name__)

DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
# nnU-Net v2's default worker counts; fullres cases are the largest, so fewer of them at once
DEFAULT_NUM_PROCESSES = {"2d": 8, "3d_fullres": 4, "3d_lowres": 8}
_FALLBACK_NUM_PROCESSES = 4
_MIN_CASES_FOR_POOL = 6  # below this, starting worker processes costs more than it saves

PreprocessedCase = tuple[np.ndarray, "np.ndarray | None", dict[str, Any]]


@dataclass
class CroppedCase:
    """A case after transposition and cropping, before normalization and resampling."""

    data: np.ndarray  # (c, z, y, x) in transposed axis order
    seg: np.ndarray  # (1, z, y, x) int16; -1 outside the nonzero region
    has_seg: bool  # False for prediction input (seg is then only the nonzero marking)
    nonzero: np.ndarray  # (z, y, x) bool: the nonzero region (labels may lie outside it)
    spacing: list[float]  # transposed spacing
    properties: dict[str, Any]


class DefaultPreprocessor:
    """nnU-Net v2's default preprocessing of one case for one (or several) configurations."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose

    def run_case(
        self,
        image_files: Sequence[str | os.PathLike],
        seg_file: str | os.PathLike | None,
        plans: Plans,
        configuration: ConfigurationPlans,
        dataset_json: DatasetJson | dict,
    ) -> PreprocessedCase:
        """Read and preprocess one case; returns ``(data, seg or None, properties)``.

        With a seg, ``properties['class_locations']`` holds the sampled voxels per class. Plans and
        configuration may also be dicts or nnU-Net v2's ``PlansManager`` / ``ConfigurationManager``.
        """
        plans, configuration = as_plans(plans), as_configuration_plans(configuration)
        data, seg, properties = self.read_case(image_files, seg_file, plans)
        return self.run_case_npy(data, seg, properties, plans, configuration, dataset_json)

    def run_case_npy(
        self,
        data: np.ndarray,
        seg: np.ndarray | None,
        properties: dict[str, Any],
        plans: Plans,
        configuration: ConfigurationPlans,
        dataset_json: DatasetJson | dict,
    ) -> PreprocessedCase:
        """Preprocess arrays already in memory (as read by the plans' reader-writer)."""
        plans, configuration = as_plans(plans), as_configuration_plans(configuration)
        cropped = self.transpose_and_crop(data, seg, properties, plans)
        normalized = self.normalize(cropped, configuration, plans)
        return self.resample(cropped, normalized, configuration, _as_dataset_json(dataset_json))

    def run_case_for_configurations(
        self,
        image_files: Sequence[str | os.PathLike],
        seg_file: str | os.PathLike | None,
        plans: Plans,
        configurations: Sequence[ConfigurationPlans],
        dataset_json: DatasetJson | dict,
    ) -> Iterator[tuple[ConfigurationPlans, np.ndarray, np.ndarray | None, dict]]:
        """Yield ``(configuration, data, seg, properties)`` per configuration, reading the case once.

        Results may be shared between configurations: treat the yielded arrays as read-only.
        """
        dataset_json = _as_dataset_json(dataset_json)
        data, seg, properties = self.read_case(image_files, seg_file, plans)
        if seg is not None:
            # -1 would take the crop marker's meaning and 0.5 would become 0: refused here, naming the file
            problem = label_value_problem(seg, LabelManager.from_dataset_json(dataset_json).declared_values)
            if problem:
                raise DatasetError(f"{seg_file}: {problem}")
        cropped = self.transpose_and_crop(data, seg, properties, plans)
        del data, seg
        norm_keys = [_normalization_key(c) for c in configurations]
        result_keys = [
            (nk, _resampling_key(c, self.target_spacing(cropped.spacing, c)))
            for nk, c in zip(norm_keys, configurations)
        ]
        normalized: dict[tuple, np.ndarray] = {}
        results: dict[tuple, PreprocessedCase] = {}
        for i, configuration in enumerate(configurations):
            nk, rk = norm_keys[i], result_keys[i]
            if rk not in results:
                if nk not in normalized:
                    normalized[nk] = self.normalize(cropped, configuration, plans)
                results[rk] = self.resample(cropped, normalized[nk], configuration, dataset_json)
            result = results[rk]
            # drop intermediates no later configuration needs, so memory stays at one case's worth
            if nk not in norm_keys[i + 1 :]:
                normalized.pop(nk, None)
            if rk not in result_keys[i + 1 :]:
                del results[rk]
            yield (configuration, *result)

    def read_case(
        self, image_files: Sequence[str | os.PathLike], seg_file: str | os.PathLike | None, plans: Plans
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """Return ``(data, seg or None, properties)`` read with the plans' reader-writer."""
        reader = reader_writer_class_from_name(plans.image_reader_writer)()
        data, properties = reader.read_images([str(f) for f in image_files])
        if seg_file is None:
            return data, None, properties
        seg, seg_properties = reader.read_seg(str(seg_file))
        if seg.shape[1:] != data.shape[1:]:
            raise DatasetError(
                f"{seg_file}: segmentation shape {tuple(seg.shape[1:])} differs from the "
                f"image shape {tuple(data.shape[1:])}"
            )
        difference = geometry_problem(properties, seg_properties)
        if difference:
            raise DatasetError(f"{seg_file}: {difference}")
        return data, seg, properties

    def transpose_and_crop(
        self, data: np.ndarray, seg: np.ndarray | None, properties: dict[str, Any], plans: Plans
    ) -> CroppedCase:
        """Transpose by ``plans.transpose_forward`` and crop to the nonzero region; records the geometry.

        Refuses NaN or inf intensities (a network turns them into a background-only output) and an
        image whose dimensionality differs from the plans' dataset (a 2D image in a 3D dataset).
        """
        problem = nonfinite_problem(data)
        if problem:
            raise DatasetError(f"the input {problem}; fix the image (e.g. replace them with the background value)")
        if is_2d(properties["spacing"]) != (SPACING_OF_MISSING_AXIS in plans.original_median_spacing_after_transp):
            kind, other = ("2D", "3D") if is_2d(properties["spacing"]) else ("3D", "2D")
            raise DatasetError(f"the input is a {kind} image but plans '{plans.plans_name}' are for {other} images")
        axes = [0] + [a + 1 for a in plans.transpose_forward]
        data = data.transpose(axes)
        if seg is not None:
            # signed, because cropping marks the outside of the nonzero region with -1
            seg = seg.astype(np.int16, copy=False).transpose(axes)
        spacing = [float(properties["spacing"][a]) for a in plans.transpose_forward]
        shape_before_cropping = [int(s) for s in data.shape[1:]]
        data, cropped_seg, bbox, nonzero = crop_to_nonzero(data, seg)
        properties = dict(properties)
        properties["shape_before_cropping"] = shape_before_cropping
        properties["bbox_used_for_cropping"] = bbox
        properties["shape_after_cropping_and_before_resampling"] = [int(s) for s in data.shape[1:]]
        if self.verbose:
            logger.info("cropped %s -> %s (spacing %s)", shape_before_cropping, list(data.shape[1:]), spacing)
        return CroppedCase(
            data, cropped_seg.astype(np.int16, copy=False), seg is not None, nonzero, spacing, properties
        )

    def normalize(self, cropped: CroppedCase, configuration: ConfigurationPlans, plans: Plans) -> np.ndarray:
        """Return the float32 data normalized channel by channel with the configuration's schemes."""
        schemes = configuration.normalization_schemes
        if len(schemes) != cropped.data.shape[0]:
            raise DatasetError(
                f"the image has {cropped.data.shape[0]} channel(s) but configuration "
                f"'{configuration.name}' normalizes {len(schemes)}"
            )
        intensity = plans.foreground_intensity_properties_per_channel
        seg = self.normalization_seg(cropped) if any(configuration.use_mask_for_norm) else cropped.seg[0]
        out = np.empty(cropped.data.shape, dtype=np.float32)
        for c, scheme in enumerate(schemes):
            normalizer = normalization_class_from_name(scheme)(
                use_mask_for_norm=configuration.use_mask_for_norm[c], intensityproperties=intensity.get(str(c))
            )
            out[c] = normalizer.run(cropped.data[c], seg)
        return out

    @staticmethod
    def normalization_seg(cropped: CroppedCase) -> np.ndarray:
        """Return the ``(z, y, x)`` seg with every voxel outside the nonzero region at -1 (the norm mask).

        Cropping marks only background there, so a voxel under the ignore label (or a foreground label)
        outside the region kept its value and would enter a masked z-score's mean and std: the training
        images of a sparse dataset were then normalized differently from the same images at prediction
        time, where there is no seg and the mask is exactly the nonzero region.
        """
        if not cropped.has_seg:
            return cropped.seg[0]  # prediction input: already exactly the nonzero marking
        return np.where(cropped.nonzero, cropped.seg[0], OUTSIDE_NONZERO_LABEL).astype(np.int16)

    @staticmethod
    def target_spacing(spacing: Sequence[float], configuration: ConfigurationPlans) -> list[float]:
        """Return the spacing to resample to; 2D configurations keep the slice spacing (axis 0)."""
        target = [float(s) for s in configuration.spacing]
        return [float(spacing[0])] + target if len(target) < len(spacing) else target

    def resample(
        self, cropped: CroppedCase, normalized: np.ndarray, configuration: ConfigurationPlans, dataset_json: DatasetJson
    ) -> PreprocessedCase:
        """Resample normalized data (and the seg, when the case has one) to the configuration's spacing."""
        target = self.target_spacing(cropped.spacing, configuration)
        new_shape = compute_new_shape(normalized.shape[1:], cropped.spacing, target)
        resample_data = resampling_function_by_name(configuration.resampling_fn_data)
        data = resample_data(normalized, new_shape, cropped.spacing, target, **configuration.resampling_fn_data_kwargs)
        properties = dict(cropped.properties)
        if not cropped.has_seg:
            return data, None, properties
        resample_seg = resampling_function_by_name(configuration.resampling_fn_seg)
        seg = resample_seg(cropped.seg, new_shape, cropped.spacing, target, **configuration.resampling_fn_seg_kwargs)
        keys = self.class_location_keys(LabelManager.from_dataset_json(dataset_json))
        properties["class_locations"] = sample_class_locations(seg, keys)
        return data, seg, properties

    @staticmethod
    def class_location_keys(label_manager: LabelManager) -> list[ClassKey]:
        """Classes (or regions) whose voxels foreground oversampling draws from."""
        keys: list[ClassKey] = list(
            label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels
        )
        if label_manager.has_ignore_label:
            # sparse annotations: annotated background is rare and worth sampling too
            keys.append(0)
        return keys


PREPROCESSORS: dict[str, type[DefaultPreprocessor]] = {"DefaultPreprocessor": DefaultPreprocessor}


def preprocessor_class_from_name(name: str) -> type[DefaultPreprocessor]:
    """Return the preprocessor class a configuration names in ``preprocessor_name``."""
    if name not in PREPROCESSORS:
        raise PlansError(f"unknown preprocessor '{name}' in the plans (known: {', '.join(PREPROCESSORS)})")
    return PREPROCESSORS[name]


def _as_dataset_json(dataset_json: DatasetJson | dict) -> DatasetJson:
    return dataset_json if isinstance(dataset_json, DatasetJson) else DatasetJson.from_dict(dataset_json)


def _normalization_key(configuration: ConfigurationPlans) -> tuple:
    return tuple(configuration.normalization_schemes), tuple(bool(m) for m in configuration.use_mask_for_norm)


def _resampling_key(configuration: ConfigurationPlans, target_spacing: list[float]) -> tuple:
    c = configuration
    return (
        tuple(target_spacing),
        c.resampling_fn_data,
        c.resampling_fn_seg,
        json.dumps(c.resampling_fn_data_kwargs, sort_keys=True),
        json.dumps(c.resampling_fn_seg_kwargs, sort_keys=True),
    )


@dataclass
class _CaseJob:
    """Everything a worker process needs to preprocess one case for all selected configurations."""

    case_id: str
    image_files: list[Path]
    label_file: Path
    gt_file: Path
    plans: Plans
    configurations: list[ConfigurationPlans]
    output_folders: dict[str, Path]
    dataset_json: DatasetJson
    verbose: bool = False


def _preprocess_case(job: _CaseJob) -> str:
    """Preprocess and save one case for every configuration of the job; copy its reference label."""
    try:
        by_preprocessor: dict[str, list[ConfigurationPlans]] = {}
        for configuration in job.configurations:
            by_preprocessor.setdefault(configuration.preprocessor_name, []).append(configuration)
        for name, configurations in by_preprocessor.items():
            preprocessor = preprocessor_class_from_name(name)(verbose=job.verbose)
            for configuration, data, seg, properties in preprocessor.run_case_for_configurations(
                job.image_files, job.label_file, job.plans, configurations, job.dataset_json
            ):
                assert seg is not None, "training cases always have a label file"
                stored = {k: v for k, v in properties.items() if k != "class_locations"}
                save_preprocessed_case(
                    job.output_folders[configuration.name],
                    job.case_id,
                    data,
                    seg,
                    stored,
                    properties["class_locations"],
                )
        with atomic_path(job.gt_file) as tmp:
            shutil.copyfile(job.label_file, tmp)
    except NnUNetError as e:
        raise type(e)(f"case '{job.case_id}': {e}") from None
    return job.case_id


def _select_configurations(
    plans: Plans, configurations: Sequence[str], num_processes: int | Sequence[int] | None
) -> list[tuple[ConfigurationPlans, int]]:
    """Return the configurations to preprocess with their worker counts, one per data_identifier."""
    names = list(configurations)
    if num_processes is None:
        counts = [DEFAULT_NUM_PROCESSES.get(n, _FALLBACK_NUM_PROCESSES) for n in names]
    elif isinstance(num_processes, int):
        counts = [num_processes] * len(names)
    else:
        counts = [int(n) for n in num_processes]
        if len(counts) == 1:
            counts *= len(names)
        if len(counts) != len(names):
            raise PreprocessingError(
                f"got {len(counts)} process counts for {len(names)} configurations "
                f"({', '.join(names)}): give one number or one per configuration"
            )
    # the default trio is asked for without looking at the plans, which may lack some of it (2D data,
    # no lowres); a configuration the user picked must exist
    lenient = set(names) == set(DEFAULT_CONFIGURATIONS)
    selected: list[tuple[ConfigurationPlans, int]] = []
    identifiers: dict[str, str] = {}
    for name, count in zip(names, counts):
        if name not in plans.configurations and lenient:
            logger.info("configuration %s is not in plans %s; skipped", name, plans.plans_name)
            continue
        configuration = plans.configuration(name)  # raises PlansError for an unknown name
        if configuration.data_identifier in identifiers:
            logger.info(
                "configuration %s shares its data with %s; preprocessed once",
                name,
                identifiers[configuration.data_identifier],
            )
            continue
        identifiers[configuration.data_identifier] = name
        selected.append((configuration, max(1, count)))
    if not selected:
        raise PlansError(
            f"plans '{plans.plans_name}' contain none of the configurations {', '.join(names)} "
            f"(available: {', '.join(plans.configurations)})"
        )
    return selected


def _remove_stale_outputs(folder: Path, case_ids: set[str], gt_ending: str | None = None) -> None:
    """Delete cases of an earlier run that are no longer in the dataset, and interrupted temp files."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    if gt_ending is None:
        for case_id in set(list_preprocessed_cases(folder)) - case_ids:
            remove_preprocessed_case(folder, case_id)
        return
    for path in folder.iterdir():
        if path.name.endswith(gt_ending) and path.name[: -len(gt_ending)] not in case_ids:
            path.unlink()


def _run_jobs(jobs: list[_CaseJob], num_processes: int, show_progress: bool) -> None:
    from nnunetv2.utilities.progress import progress_bar

    with progress_bar(total=len(jobs), desc="preprocessing", unit="case", disable=not show_progress) as progress:
        if num_processes <= 1 or len(jobs) < _MIN_CASES_FOR_POOL:
            for job in jobs:
                _preprocess_case(job)
                progress.update()
            return

        # spawn: forked workers can deadlock on thread pools that numpy/blosc2 started in the parent
        pool = spawn_executor(min(num_processes, len(jobs)))
        try:
            for future in as_completed([pool.submit(_preprocess_case, job) for job in jobs]):
                future.result()
                progress.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def preprocess_dataset(
    dataset_id_or_name: str | int,
    plans_identifier: str = "nnUNetPlans",
    configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
    num_processes: int | Sequence[int] | None = None,
    show_progress: bool = True,
    verbose: bool = False,
) -> None:
    """Preprocess a raw dataset into ``nnUNet_preprocessed/DatasetXXX/<data_identifier>/`` per configuration.

    When the default trio (2d, 3d_fullres, 3d_lowres) is asked for, members the plans lack are
    skipped with a log line; otherwise every named configuration must be in the plans. ``num_processes`` is one count
    or one per configuration (default: nnU-Net v2's 8/4/8); cases are processed once for all
    configurations, so the smallest count applies. Also copies the reference segmentations to
    ``gt_segmentations/`` and dataset.json next to the plans.
    """
    dataset_name = convert_id_to_dataset_name(dataset_id_or_name)
    raw_dataset = paths.raw_folder() / dataset_name
    output_root = paths.preprocessed_folder() / dataset_name
    plans_file = output_root / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise PlansError(f"{plans_file}: plans not found (run nnUNetv2_plan_experiment first)")
    plans = Plans.load(plans_file)
    if not (raw_dataset / "dataset.json").is_file():
        raise DatasetError(f"{raw_dataset / 'dataset.json'}: raw dataset not found")
    dataset_json = DatasetJson.load(raw_dataset / "dataset.json")
    selected = _select_configurations(plans, configurations, num_processes)

    cases = list_training_cases(raw_dataset, dataset_json)
    if not cases:
        raise DatasetError(f"{raw_dataset}: no training cases found")
    for case_id, entry in cases.items():
        if not entry["label"].is_file():
            raise DatasetError(f"{entry['label']}: label file of case '{case_id}' is missing")

    output_folders = {c.name: output_root / c.data_identifier for c, _ in selected}
    gt_folder = output_root / "gt_segmentations"
    case_ids = set(cases)
    for folder in output_folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        # first: from here until the final record, training sees this folder as incomplete
        write_preprocessing_record(folder, sorted(case_ids), complete=False)
        _remove_stale_outputs(folder, case_ids)
    _remove_stale_outputs(gt_folder, case_ids, gt_ending=dataset_json.file_ending)
    dataset_json.save(output_root / "dataset.json")

    configurations_to_run = [c for c, _ in selected]
    jobs = [
        _CaseJob(
            case_id,
            list(entry["images"]),
            entry["label"],
            gt_folder / f"{case_id}{dataset_json.file_ending}",
            plans,
            configurations_to_run,
            output_folders,
            dataset_json,
            verbose,
        )
        for case_id, entry in cases.items()
    ]
    workers = min(n for _, n in selected)
    logger.info(
        "preprocessing %d cases of %s for %s", len(jobs), dataset_name, ", ".join(c.name for c in configurations_to_run)
    )
    _run_jobs(jobs, workers, show_progress)
    for folder in output_folders.values():
        write_preprocessing_record(folder, sorted(case_ids), complete=True)
