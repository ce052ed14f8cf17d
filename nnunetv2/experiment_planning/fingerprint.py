"""Dataset fingerprint (nnU-Net v2's dataset_fingerprint.json): spacings, cropped shapes, foreground intensities.

Foreground means annotated foreground: label > 0 and not the ignore label. The intensity
statistics are exact values of what nnU-Net v2 estimates by sampling (see intensity_statistics).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.case_checks import dimensionality_problem, training_case_problem
from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.experiment_planning.intensity_statistics import (
    ForegroundIntensitySummary,
    pooled_foreground_statistics,
    summarize_foreground_intensities,
)
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.utilities.file_io import atomic_path, load_json, save_json
from nnunetv2.utilities.process_pool import spawn_executor

logger = logging.getLogger(__name__)

FINGERPRINT_FILE_NAME = "dataset_fingerprint.json"
FINGERPRINT_KEYS = (
    "spacings",
    "shapes_after_crop",
    "foreground_intensity_properties_per_channel",
    "median_relative_size_after_cropping",
)
# below this many cases, starting worker processes costs more than it saves
MIN_CASES_FOR_WORKER_POOL = 8


@dataclass
class CaseFingerprint:
    """What the fingerprint needs from one training case."""

    spacing: list[float]
    shape_after_crop: list[int]
    relative_size_after_cropping: float
    intensity_summaries: list[ForegroundIntensitySummary | None]  # per channel; None: no foreground


@dataclass(frozen=True)
class CaseJob:
    """Everything a (worker) process needs to analyse one case."""

    case: str
    image_files: tuple[str, ...]
    label_file: str
    reader_writer_class: type
    num_channels: int
    ignore_label: int | None
    max_distinct_values: int
    declared_labels: tuple[int, ...]  # label values dataset.json declares (the ignore label included)


def analyze_case(job: CaseJob) -> CaseFingerprint:
    """Read, crop to the nonzero region and summarise one case (runs in worker processes)."""
    from nnunetv2.preprocessing.cropping import crop_to_nonzero

    reader = job.reader_writer_class()
    images, properties = reader.read_images(list(job.image_files))
    seg, seg_properties = reader.read_seg(job.label_file)
    # always on and cheap (one pass over voxels read anyway): bad data would otherwise train silently
    problem = training_case_problem(
        images, properties, seg, seg_properties, job.label_file, job.num_channels, job.declared_labels
    )
    if problem:
        raise DatasetError(f"case '{job.case}': {problem}")
    # signed, so that cropping can mark voxels outside the nonzero region with -1
    cropped, seg_cropped, _, _ = crop_to_nonzero(images, seg.astype(np.int32, copy=False))
    # annotated foreground only: voxels under the ignore label are unlabelled, not foreground
    foreground = seg_cropped[0] > 0
    if job.ignore_label is not None:
        foreground &= seg_cropped[0] != job.ignore_label
    return CaseFingerprint(
        spacing=[float(s) for s in properties["spacing"]],
        shape_after_crop=[int(s) for s in cropped.shape[1:]],
        relative_size_after_cropping=float(
            np.prod(cropped.shape[1:], dtype=np.float64) / np.prod(images.shape[1:], dtype=np.float64)
        ),
        intensity_summaries=[
            summarize_foreground_intensities(channel[foreground], job.max_distinct_values) for channel in cropped
        ],
    )


def extract_fingerprint(
    raw_dataset_folder: str | os.PathLike,
    output_file: str | os.PathLike | None = None,
    num_processes: int = 1,
    num_foreground_voxels_for_stats: float = 1e8,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Return (and write to ``output_file`` if given) the fingerprint of a raw dataset folder."""
    from nnunetv2.dataset.cases import list_training_cases
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    folder = Path(raw_dataset_folder)
    dataset_json = DatasetJson.load(folder / "dataset.json")
    label_manager = LabelManager(
        dataset_json.labels, dataset_json.regions_class_order, source=str(folder / "dataset.json")
    )
    cases = list_training_cases(folder, dataset_json)
    if not cases:
        raise DatasetError(f"{folder}: no training cases found")
    for case, entry in cases.items():
        if not entry["label"].is_file():
            raise DatasetError(f"{entry['label']}: label file of case '{case}' is missing")
    reader_writer = reader_writer_for_dataset(dataset_json, str(next(iter(cases.values()))["images"][0]))
    max_distinct_values = max(1, int(num_foreground_voxels_for_stats // len(cases)))
    declared = label_manager.declared_values
    jobs = [
        CaseJob(
            case,
            tuple(str(f) for f in entry["images"]),
            str(entry["label"]),
            reader_writer,
            dataset_json.num_channels,
            label_manager.ignore_label,
            max_distinct_values,
            tuple(declared),
        )
        for case, entry in cases.items()
    ]
    results = _analyze_cases(jobs, num_processes, show_progress)
    problem = dimensionality_problem({job.case: r.spacing for job, r in zip(jobs, results)})
    if problem:
        raise DatasetError(f"{folder}: {problem}")

    statistics = {}
    for channel in range(dataset_json.num_channels):
        summaries = [s for r in results if (s := r.intensity_summaries[channel]) is not None]
        if not summaries:
            raise DatasetError(
                f"{folder}: no training case has annotated foreground voxels, so the "
                f"foreground intensity statistics cannot be computed"
            )
        statistics[str(channel)] = pooled_foreground_statistics(summaries)
    fingerprint = {
        "spacings": [r.spacing for r in results],
        "shapes_after_crop": [r.shape_after_crop for r in results],
        "foreground_intensity_properties_per_channel": statistics,
        "median_relative_size_after_cropping": float(np.median([r.relative_size_after_cropping for r in results])),
    }
    if output_file is not None:
        save_json(fingerprint, output_file)
    return fingerprint


def _analyze_cases(jobs: Sequence[CaseJob], num_processes: int, show_progress: bool) -> list[CaseFingerprint]:
    """Analyze the cases in order, in worker processes when there are enough of them."""
    from nnunetv2.utilities.progress import progress_bar

    with progress_bar(
        total=len(jobs), desc="Extracting dataset fingerprint", unit="case", disable=not show_progress
    ) as progress:
        if num_processes <= 1 or len(jobs) < MIN_CASES_FOR_WORKER_POOL:
            results = []
            for job in jobs:
                results.append(analyze_case(job))
                progress.update()
            return results
        from concurrent.futures.process import BrokenProcessPool

        results = []
        # spawn: forking a parent that already runs threads (torch, blosc2) is unsafe
        with spawn_executor(min(num_processes, len(jobs))) as pool:
            try:
                for result in pool.map(analyze_case, jobs):
                    results.append(result)
                    progress.update()
            except BrokenProcessPool:
                raise NnUNetError(
                    "a fingerprint worker process died (often: out of memory); retry with fewer processes (-npfp)"
                ) from None
        return results


def default_num_processes() -> int:
    """Return nnU-Net's default worker count: $nnUNet_def_n_proc, else 8 (at most the CPU count)."""
    value = os.environ.get("nnUNet_def_n_proc")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise NnUNetError(f"nnUNet_def_n_proc must be an integer (got '{value}')") from None
    return max(1, min(8, os.cpu_count() or 1))


def copy_dataset_json(raw_dataset_folder: Path, preprocessed_dataset_folder: Path) -> None:
    """Copy the raw dataset.json next to the fingerprint and plans (as nnU-Net v2 does)."""
    with atomic_path(preprocessed_dataset_folder / "dataset.json") as tmp:
        shutil.copyfile(raw_dataset_folder / "dataset.json", tmp)


def extract_fingerprint_for_dataset(
    dataset_id_or_name: str | int,
    num_processes: int | None = None,
    check_integrity: bool = False,
    clean: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json (kept unless ``clean``) and return it."""
    from nnunetv2 import paths
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    dataset_name = convert_id_to_dataset_name(dataset_id_or_name)
    raw_folder = paths.raw_folder() / dataset_name
    if not (raw_folder / "dataset.json").is_file():
        raise DatasetError(f"{raw_folder / 'dataset.json'}: file not found (is nnUNet_raw set correctly?)")
    num_processes = default_num_processes() if num_processes is None else num_processes
    if check_integrity:
        from nnunetv2.dataset.integrity import verify_dataset_integrity

        verify_dataset_integrity(raw_folder, num_processes)
    output_folder = paths.preprocessed_folder() / dataset_name
    output_folder.mkdir(parents=True, exist_ok=True)
    copy_dataset_json(raw_folder, output_folder)
    fingerprint_file = output_folder / FINGERPRINT_FILE_NAME
    if fingerprint_file.is_file() and not clean:
        logger.info("%s exists; keeping it (use --clean to recompute)", fingerprint_file)
        return load_json(fingerprint_file)
    return extract_fingerprint(raw_folder, fingerprint_file, num_processes, show_progress=show_progress)
