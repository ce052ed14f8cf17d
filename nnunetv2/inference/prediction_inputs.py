"""Which cases to predict: channel files per case, output names, previous-stage segmentations, parts."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nnunetv2.exceptions import InferenceError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans
from nnunetv2.utilities.file_io import list_files

logger = logging.getLogger(__name__)

_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


@dataclass(frozen=True)
class PredictionCase:
    """One case to predict and where its outputs go (``output_file_truncated`` + ending / .npz / .pkl)."""

    case_id: str
    image_files: tuple[str, ...]
    output_file_truncated: str | None  # None: the prediction is returned, not written
    previous_stage_file: str | None = None

    def is_done(self, file_ending: str, save_probabilities: bool) -> bool:
        """True when the outputs a run would write already exist."""
        if self.output_file_truncated is None:
            return False
        done = os.path.isfile(self.output_file_truncated + file_ending)
        return done and (not save_probabilities or os.path.isfile(self.output_file_truncated + ".npz"))


def _cases_from_folder(folder: Path, dataset_json: DatasetJson) -> dict[str, list[str]]:
    from nnunetv2.dataset.cases import group_images_by_case

    if not folder.is_dir():
        raise InferenceError(f"{folder}: input folder not found")
    files = list_files(folder)
    if not any(f.name.endswith(dataset_json.file_ending) for f in files):
        others = sorted({"".join(f.suffixes) for f in files})
        found = f"; found files ending in {', '.join(others)}" if others else ""
        raise InferenceError(
            f"{folder}: no images ending in '{dataset_json.file_ending}' (the file ending the "
            f"model was trained with){found}"
        )
    grouped = group_images_by_case(folder, dataset_json.file_ending, dataset_json.num_channels)
    return {case: [str(f) for f in files] for case, files in grouped.items()}


def _cases_from_lists(lists: Sequence[Sequence[str | os.PathLike]], dataset_json: DatasetJson) -> dict[str, list[str]]:
    cases: dict[str, list[str]] = {}
    for given in lists:
        files = [str(f) for f in given]
        if not files:
            raise InferenceError("an input case has no image files")
        wrong = next((f for f in files if not f.endswith(dataset_json.file_ending)), None)
        if wrong is not None:
            raise InferenceError(
                f"{wrong}: does not end in '{dataset_json.file_ending}', the file ending the model was trained with"
            )
        if len(files) not in (1, dataset_json.num_channels):
            raise InferenceError(
                f"{files[0]}: case has {len(files)} channel files, the model expects {dataset_json.num_channels}"
            )
        case_id = _CHANNEL_SUFFIX.sub("", os.path.basename(files[0])[: -len(dataset_json.file_ending)])
        if case_id in cases:
            raise InferenceError(f"{files[0]}: case '{case_id}' is listed twice")
        cases[case_id] = files
    return cases


def list_prediction_cases(
    inputs: str | os.PathLike | Sequence[Sequence[str | os.PathLike]],
    outputs: str | os.PathLike | Sequence[str] | None,
    dataset_json: DatasetJson,
    configuration: ConfigurationPlans,
    folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
    num_parts: int = 1,
    part_id: int = 0,
) -> list[PredictionCase]:
    """Return this part's cases from an input folder (``CASE_XXXX`` files) or a list of channel-file lists.

    ``outputs`` is an output folder, one truncated output name per case, or None (predictions are
    returned instead of written, as nnU-Net v2's ``predict_from_files`` allows).
    """
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise InferenceError(f"part_id must be in 0..num_parts-1, got part_id {part_id} of {num_parts} parts")
    if isinstance(inputs, (str, os.PathLike)):
        images = _cases_from_folder(Path(inputs), dataset_json)
    else:
        images = _cases_from_lists(inputs, dataset_json)
    truncated: list[str | None]
    if outputs is None:
        truncated = [None] * len(images)
    elif isinstance(outputs, (str, os.PathLike)):
        truncated = [str(Path(outputs) / case_id) for case_id in images]
    else:
        truncated = [str(o) for o in outputs]
        if len(truncated) != len(images):
            raise InferenceError(f"got {len(truncated)} output names for {len(images)} input cases")

    previous_stage = None
    if configuration.previous_stage:
        if folder_with_segs_from_prev_stage is None:
            raise InferenceError(
                f"configuration '{configuration.name}' is a cascade stage: give the predictions of "
                f"'{configuration.previous_stage}' (-prev_stage_predictions)"
            )
        previous_stage = Path(folder_with_segs_from_prev_stage)
    elif folder_with_segs_from_prev_stage is not None:
        logger.warning(
            "configuration '%s' is not a cascade stage; ignoring the previous-stage predictions", configuration.name
        )

    cases = []
    for (case_id, files), output in list(zip(images.items(), truncated))[part_id::num_parts]:
        previous_file = None
        if previous_stage is not None:
            previous_file = previous_stage / f"{case_id}{dataset_json.file_ending}"
            if not previous_file.is_file():
                raise InferenceError(f"{previous_file}: previous-stage prediction of case '{case_id}' not found")
        cases.append(PredictionCase(case_id, tuple(files), output, str(previous_file) if previous_file else None))
    return cases
