"""Ensemble predictions: average each case's probabilities over several models, then write its segmentation.

Inputs are the ``CASE.npz`` (key ``probabilities``, ``(C, z, y, x)`` in the raw image geometry) and
``CASE.pkl`` (the properties needed to write the file) that prediction writes with
``--save_probabilities`` and training writes into ``fold_k/validation`` with ``--npz``. Cases are
processed one at a time and averaged in float32, so memory holds one case and one member at once.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import InferenceError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.formats.prediction_folder import (
    DatasetJsonLike,
    PlansLike,
    load_plans_and_dataset_json,
    segmentation_files,
)
from nnunetv2.utilities.file_io import atomic_path, list_files
from nnunetv2.utilities.process_pool import map_over_cases

logger = logging.getLogger(__name__)

PROBABILITIES_KEY = "probabilities"
VALIDATION_FOLDER = "validation"


def load_probabilities(npz_file: str | os.PathLike) -> np.ndarray:
    """Return the ``probabilities`` array of a prediction's .npz file as float32."""
    npz_file = Path(npz_file)
    if not npz_file.is_file():
        raise InferenceError(f"{npz_file}: file not found")
    try:
        with np.load(npz_file, allow_pickle=False) as content:
            if PROBABILITIES_KEY not in content.files:
                raise InferenceError(
                    f"{npz_file}: has no '{PROBABILITIES_KEY}' array (holds: {', '.join(content.files) or 'nothing'})"
                )
            return content[PROBABILITIES_KEY].astype(np.float32, copy=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise InferenceError(f"{npz_file}: not a readable .npz file ({str(e)[:200]})") from None


def average_probabilities(npz_files: Sequence[str | os.PathLike]) -> np.ndarray:
    """Return the float32 mean of the ``probabilities`` of ``npz_files`` (all of one shape)."""
    if not npz_files:
        raise InferenceError("no probability files to average")
    total = load_probabilities(npz_files[0]).copy()
    for npz_file in npz_files[1:]:
        probabilities = load_probabilities(npz_file)
        if probabilities.shape != total.shape:
            raise InferenceError(
                f"{npz_file}: probabilities have shape {list(probabilities.shape)} but "
                f"{npz_files[0]} has {list(total.shape)}; only predictions of the same "
                f"images with the same labels can be ensembled"
            )
        total += probabilities
    total /= len(npz_files)
    return total


def load_case_properties(pkl_file: str | os.PathLike) -> dict[str, Any]:
    """Return the properties stored next to a prediction (only plain data types are unpickled)."""
    from nnunetv2.utilities.safe_pickle import load_pickle_safely

    properties = load_pickle_safely(pkl_file)
    if not isinstance(properties, dict):
        raise InferenceError(
            f"{pkl_file}: expected the properties of a case (a dict), found {type(properties).__name__}"
        )
    return properties


@dataclass
class _MergeJob:
    case_id: str
    npz_files: list[Path]
    output_folder: Path
    file_ending: str
    reader_writer_name: str
    label_manager: LabelManager
    save_probabilities: bool


def _merge_case(job: _MergeJob) -> Path:
    """Average one case's probabilities and write its segmentation (and, if asked, the average)."""
    from nnunetv2.imageio.base_reader_writer import atomic_image_path
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    properties_file = job.npz_files[0].with_suffix(".pkl")
    if not properties_file.is_file():
        raise InferenceError(
            f"{properties_file}: not found; it holds the geometry needed to write case "
            f"'{job.case_id}' (written with the .npz by --save_probabilities)"
        )
    properties = load_case_properties(properties_file)
    probabilities = average_probabilities(job.npz_files)
    expected = job.label_manager.num_segmentation_heads
    if probabilities.shape[0] != expected:
        raise InferenceError(
            f"{job.npz_files[0]}: {probabilities.shape[0]} probability channels, but the "
            f"labels of dataset.json need {expected}"
        )
    segmentation = job.label_manager.probabilities_to_segmentation(probabilities)
    output_file = job.output_folder / f"{job.case_id}{job.file_ending}"
    if job.save_probabilities:
        with atomic_path(job.output_folder / f"{job.case_id}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **{PROBABILITIES_KEY: probabilities})  # type: ignore[arg-type]
        with atomic_path(job.output_folder / f"{job.case_id}.pkl") as tmp:
            with open(tmp, "wb") as f:
                pickle.dump(properties, f)
    with atomic_image_path(output_file) as tmp:
        reader_writer_class_from_name(job.reader_writer_name)().write_seg(segmentation, tmp, properties)
    return output_file


def ensemble_cases(
    files_per_case: dict[str, list[Path]],
    output_folder: str | os.PathLike,
    plans: Plans,
    dataset_json: DatasetJson,
    save_probabilities: bool = False,
    num_processes: int = 1,
) -> list[Path]:
    """Write the ensemble of every case (case id -> its members' .npz files); returns the segmentations.

    ``plans.json`` and ``dataset.json`` are written next to them, so the output folder can be
    postprocessed or evaluated like any prediction folder.
    """
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    plans.save(output_folder / "plans.json")
    dataset_json.save(output_folder / "dataset.json")
    label_manager = LabelManager.from_dataset_json(dataset_json)
    jobs = [
        _MergeJob(
            case_id,
            list(files),
            output_folder,
            dataset_json.file_ending,
            plans.image_reader_writer,
            label_manager,
            save_probabilities,
        )
        for case_id, files in sorted(files_per_case.items())
    ]
    written = map_over_cases(_merge_case, jobs, num_processes, progress="ensembling")
    logger.info("wrote the ensemble of %d case(s) to %s", len(written), output_folder)
    return written


def _probability_files(folder: Path) -> dict[str, Path]:
    """Case id -> .npz file of a prediction folder."""
    if not folder.is_dir():
        raise InferenceError(f"{folder}: folder not found")
    return {p.name[: -len(".npz")]: p for p in list_files(folder, ".npz")}


def _cases_in_every_member(members: dict[str, dict[str, Path]]) -> dict[str, list[Path]]:
    """Case id -> one file per member; every member must hold exactly the same cases."""
    all_cases = sorted(set().union(*(cases for cases in members.values())))
    for member, cases in members.items():
        missing = [c for c in all_cases if c not in cases]
        if missing:
            other = next(m for m, cs in members.items() if missing[0] in cs)
            raise InferenceError(
                f"{member}: case '{missing[0]}' has no probabilities here but does in {other} "
                f"({len(missing)} case(s) missing); every member of an ensemble must hold "
                f"the same cases"
            )
    return {case: [cases[case] for cases in members.values()] for case in all_cases}


def ensemble_folders(
    input_folders: Sequence[str | os.PathLike],
    output_folder: str | os.PathLike,
    save_merged_probabilities: bool = False,
    num_processes: int = 1,
    dataset_json: DatasetJsonLike = None,
    plans: PlansLike = None,
) -> list[Path]:
    """Ensemble prediction folders (each with CASE.npz + CASE.pkl per case) into ``output_folder``.

    Plans and dataset.json default to those in the first input folder (prediction copies them there).
    """
    folders = [Path(f) for f in input_folders]
    if len(folders) < 2:
        raise InferenceError("an ensemble needs at least two input folders")
    output_folder = Path(output_folder)
    if any(output_folder.resolve() == f.resolve() for f in folders):
        raise InferenceError(f"{output_folder}: the output folder must not be one of the input folders")
    members = {}
    for folder in folders:
        files = _probability_files(folder)
        if not files:
            raise InferenceError(f"{folder}: no .npz probability files; predict with --save_probabilities")
        members[str(folder)] = files
    plans, dataset_json = load_plans_and_dataset_json(folders[0], plans, dataset_json)
    return ensemble_cases(
        _cases_in_every_member(members), output_folder, plans, dataset_json, save_merged_probabilities, num_processes
    )


def crossval_probability_files(model_folder: str | os.PathLike, folds: Sequence[int]) -> dict[str, Path]:
    """Case id -> .npz of its cross-validation prediction, over ``fold_k/validation`` of ``folds``."""
    model_folder = Path(model_folder)
    found: dict[str, Path] = {}
    for fold in folds:
        validation = model_folder / f"fold_{fold}" / VALIDATION_FOLDER
        if not validation.is_dir():
            raise InferenceError(f"{validation}: not found; train fold {fold} of this model first")
        files = _probability_files(validation)
        if not files:
            raise InferenceError(
                f"{validation}: no .npz probability files; rerun the validation with --npz "
                f"(nnUNetv2_train ... --val --npz)"
            )
        for case_id, path in files.items():
            if case_id in found:
                raise InferenceError(
                    f"{model_folder}: case '{case_id}' was predicted by more than one fold "
                    f"({found[case_id].parent.parent.name}, fold_{fold})"
                )
            found[case_id] = path
    return found


def has_crossval_probabilities(model_folder: str | os.PathLike, folds: Sequence[int]) -> bool:
    """True when every fold's validation folder holds a .npz for each of its predictions."""
    model_folder = Path(model_folder)
    try:
        file_ending = DatasetJson.load(model_folder / "dataset.json").file_ending
    except NnUNetError:  # an unreadable model folder is reported where it is read in earnest
        return False
    for fold in folds:
        validation = model_folder / f"fold_{fold}" / VALIDATION_FOLDER
        if not validation.is_dir():
            return False
        cases = {p.name[: -len(file_ending)] for p in segmentation_files(validation, file_ending)}
        if not cases or not cases <= set(_probability_files(validation)):
            return False
    return True


def ensemble_crossvalidations(
    model_folders: Sequence[str | os.PathLike],
    output_folder: str | os.PathLike,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    num_processes: int = 1,
    overwrite: bool = True,
) -> list[Path]:
    """Ensemble the cross-validation predictions of several model folders into ``output_folder``.

    Each model may use its own splits; a case needs a prediction in every model. Without
    ``overwrite`` cases whose segmentation already exists are kept.
    """
    folders = [Path(f) for f in model_folders]
    if len(folders) < 2:
        raise InferenceError("an ensemble needs at least two model folders")
    members = {str(folder): crossval_probability_files(folder, folds) for folder in folders}
    plans, dataset_json = load_plans_and_dataset_json(folders[0])
    files_per_case = _cases_in_every_member(members)
    output_folder = Path(output_folder)
    if overwrite and output_folder.exists():
        shutil.rmtree(output_folder)
    if not overwrite:
        files_per_case = {
            c: f for c, f in files_per_case.items() if not (output_folder / f"{c}{dataset_json.file_ending}").is_file()
        }
    return ensemble_cases(files_per_case, output_folder, plans, dataset_json, False, num_processes)
