"""What prediction's worker processes run: reading and preprocessing a case, exporting its logits.

Jobs are plain dataclasses so that they pickle into spawned workers; errors name the case.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans
from nnunetv2.inference.prediction_inputs import PredictionCase


@dataclass
class PreprocessJob:
    """One case to read and preprocess with the model's plans."""

    case: PredictionCase
    plans: Plans
    configuration: ConfigurationPlans
    dataset_json: DatasetJson
    verbose: bool = False


@dataclass
class ExportJob:
    """One case's logits to bring back to the image's geometry and write (or return)."""

    case_id: str
    logits: np.ndarray
    properties: dict[str, Any]
    configuration: ConfigurationPlans
    plans: Plans
    dataset_json: DatasetJson
    output_file_truncated: str | None  # None: return the segmentation (and probabilities) instead
    save_probabilities: bool


def preprocess_case(job: PreprocessJob) -> tuple[str, np.ndarray, dict[str, Any]]:
    """Read and preprocess one case; errors name the case."""
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.dataset.previous_stage import append_previous_stage_channels
    from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name

    if job.verbose and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # a spawned worker: show its messages
    try:
        preprocessor = preprocessor_class_from_name(job.configuration.preprocessor_name)(verbose=job.verbose)
        data, seg, properties = preprocessor.run_case(
            job.case.image_files, job.case.previous_stage_file, job.plans, job.configuration, job.dataset_json
        )
    except NnUNetError as e:
        raise type(e)(f"case '{job.case.case_id}': {e}") from None
    properties.pop("class_locations", None)
    foreground = LabelManager.from_dataset_json(job.dataset_json).foreground_labels
    return job.case.case_id, append_previous_stage_channels(data, seg, foreground), properties


def export_case(job: ExportJob):
    """Write the case (returns the segmentation file), or return its segmentation (and probabilities)."""
    from nnunetv2.inference.export import (
        convert_logits_to_segmentation_with_correct_shape,
        export_prediction_from_logits,
    )

    try:
        if job.output_file_truncated is None:
            return convert_logits_to_segmentation_with_correct_shape(
                job.logits,
                job.properties,
                job.configuration,
                job.plans,
                job.dataset_json,
                return_probabilities=job.save_probabilities,
            )
        return export_prediction_from_logits(
            job.logits,
            job.properties,
            job.configuration,
            job.plans,
            job.dataset_json,
            job.output_file_truncated,
            job.save_probabilities,
        )
    except NnUNetError as e:
        raise type(e)(f"case '{job.case_id}': {e}") from None


def worker_pool(num_processes: int, num_jobs: int) -> ProcessPoolExecutor | None:
    """A spawn pool when it pays off (several processes and more than one job), else None (run inline)."""
    if num_processes <= 1 or num_jobs <= 1:
        return None
    # spawn: forked workers can deadlock on thread pools torch/numpy started in the parent
    from nnunetv2.utilities.process_pool import spawn_executor

    return spawn_executor(min(num_processes, num_jobs))
