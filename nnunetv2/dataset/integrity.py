"""Check a raw dataset before planning: dataset.json, file names, geometry and label values.

Every problem raises DatasetError with one line naming the file or case. Nothing is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nnunetv2.dataset.case_checks import dimensionality_problem, present_label_values, training_case_problem
from nnunetv2.dataset.cases import list_training_cases
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.utilities.file_io import list_files
from nnunetv2.utilities.process_pool import ignore_interrupts, spawn_context

logger = logging.getLogger(__name__)

# a pool only pays off when there are many files to read
_MIN_CASES_FOR_POOL = 16


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


@dataclass(frozen=True)
class _CaseReport:
    """What checking one case found: its first problem (or None), its spacing and its label values."""

    problem: str | None
    spacing: tuple[float, ...] = ()
    label_values: tuple[int, ...] = ()


def _check_case(
    case: str,
    image_files: Sequence[Path],
    label_file: Path,
    reader_writer_class,
    num_channels: int,
    declared_values: Sequence[int],
) -> _CaseReport:
    """Return the case's report: one line describing its first problem, or None when it is fine."""
    reader_writer = reader_writer_class()
    try:
        images, image_properties = reader_writer.read_images([str(f) for f in image_files])
        seg, label_properties = reader_writer.read_seg(str(label_file))
    except NnUNetError as e:
        return _CaseReport(f"case '{case}': {e}")
    except (RuntimeError, OSError, ValueError) as e:  # a backend's own error for a broken file
        lines = str(e).strip().splitlines() or [type(e).__name__]
        return _CaseReport(f"case '{case}': cannot read its files ({lines[-1].strip()})")
    problem = training_case_problem(
        images, image_properties, seg, label_properties, label_file, num_channels, declared_values
    )
    values = tuple(int(v) for v in present_label_values(seg) if float(v).is_integer())
    spacing = tuple(float(s) for s in image_properties["spacing"])
    return _CaseReport(f"case '{case}': {problem}" if problem else None, spacing, values)


def _check_case_star(arguments: tuple) -> _CaseReport:
    return _check_case(*arguments)


def _duplicate_label_values(dataset_json: DatasetJson, source: Path) -> None:
    """Raise DatasetError when two label names (not regions) share one value: a typo that loses a class."""
    seen: dict[int, str] = {}
    for name, value in dataset_json.labels.items():
        if isinstance(value, (list, tuple)):
            continue  # regions overlap by design
        if int(value) in seen:
            raise DatasetError(f"{source}: labels '{seen[int(value)]}' and '{name}' both have the value {int(value)}")
        seen[int(value)] = name


def _check_classes_annotated(
    reports: Sequence[_CaseReport], label_manager: LabelManager, dataset_json: DatasetJson, source: Path
) -> None:
    """An ignore-label dataset must annotate every class somewhere (else it trains to Dice 0); dense: a warning."""
    present = set().union(*(r.label_values for r in reports))
    names = {int(v): k for k, v in dataset_json.labels.items() if not isinstance(v, (list, tuple))}
    missing = [v for v in label_manager.all_labels if v not in present]
    if not missing:
        return
    shown = ", ".join(f"'{names.get(v, v)}' ({v})" for v in missing)
    if label_manager.has_ignore_label:
        raise DatasetError(
            f"{source}: class(es) {shown} are never annotated in any training case; "
            f"the network cannot learn them (annotate some voxels, or remove them from dataset.json)"
        )
    logger.warning("%s: class(es) %s appear in no training case; the network cannot learn them", source, shown)


def verify_dataset_integrity(raw_dataset_folder: str | os.PathLike, num_processes: int = 1) -> None:
    """Raise DatasetError describing the first problem of a raw dataset; return None when it is sound."""
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    folder = Path(raw_dataset_folder)
    dataset_json = _load_dataset_json(folder)
    label_manager = LabelManager(
        dataset_json.labels, dataset_json.regions_class_order, source=str(folder / "dataset.json")
    )
    _duplicate_label_values(dataset_json, folder / "dataset.json")
    _check_file_endings(folder, dataset_json.file_ending)
    cases = list_training_cases(folder, dataset_json)
    _check_case_files(folder, dataset_json, cases)
    if not cases:
        raise DatasetError(f"{folder}: the dataset has no training cases")

    first_image = str(next(iter(cases.values()))["images"][0])
    reader_writer_class = reader_writer_for_dataset(dataset_json, first_image)
    declared = label_manager.declared_values
    jobs = [
        (case, entry["images"], entry["label"], reader_writer_class, dataset_json.num_channels, declared)
        for case, entry in cases.items()
    ]
    logger.info("verifying %d cases of %s", len(jobs), folder.name)
    if num_processes > 1 and len(jobs) >= _MIN_CASES_FOR_POOL:
        with spawn_context().Pool(min(num_processes, len(jobs)), ignore_interrupts) as pool:
            reports = list(pool.imap(_check_case_star, jobs, chunksize=4))
    else:
        reports = list(map(_check_case_star, jobs))
    problems = [r.problem for r in reports if r.problem]
    if not problems:
        dimensionality = dimensionality_problem({case: r.spacing for case, r in zip(cases, reports)})
        if dimensionality:
            problems.append(dimensionality)
    if problems:
        for problem in problems[1:]:
            logger.error(problem)
        more = f" (and {len(problems) - 1} more problem(s), logged above)" if len(problems) > 1 else ""
        raise DatasetError(problems[0] + more)
    _check_classes_annotated(reports, label_manager, dataset_json, folder / "dataset.json")
    logger.info("%s: dataset is sound", folder.name)
