"""Write simulated correction scribbles for a folder of predictions (nnUNetv2_simulate_correction_scribbles).

Inputs: ``PRED/{case}{ending}`` (what the person corrects: nnUNetv2_predict's output, the ensemble
segmentations of nnUNetv2_uncertainty, round_0/predictions of a scribble loop) and
``REF/{case}{ending}`` (the truth the simulated person knows; further cases are ignored).
Output: ``OUT/{case}{ending}``, one scribble file per case in the prediction's geometry and format
(the stroke's reference class where drawn, the unannotated value elsewhere; see
documentation/scribble_correction.md), and ``OUT/simulated_scribbles.json`` (settings, voxels per
case). OUT is then the ``-s`` folder of nnUNetv2_scribble_pseudolabels or nnUNetv2_scribble_loop.
Everything is read and checked before the first file is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.annotation.case_files import (
    dataset_json_for,
    index_case_files,
    read_segmentation,
    reader_writer_for_file,
    unannotated_value_for,
)
from nnunetv2.annotation.guided_scribbles import PLACEMENTS, simulate_pool_correction_scribbles
from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.file_io import list_files
from nnunetv2.utilities.parameters import check_number

logger = logging.getLogger(__name__)

SUMMARY_FILE = "simulated_scribbles.json"


def write_simulated_correction_scribbles(
    prediction_folder: str | os.PathLike,
    reference_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    budget: int | float = 0.3,
    placement: str = "largest",
    worklist: str | os.PathLike | None = None,
    seed: int = 0,
    dataset: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
    axis: int = 0,
    min_region_size: int = 10,
    strokes_per_region: int = 1,
    thickness: int = 3,
) -> dict[str, Any]:
    """Simulate a person's correction strokes on every prediction and write them as scribble files; return the
    summary written to ``OUT/simulated_scribbles.json``.

    budget: voxels scribbled over the whole pool; an int is a voxel count, a float in (0, 1] a fraction of
    the pool's wrongly predicted voxels. placement: "largest" / "random" (error regions per case, the budget
    shared evenly over the cases), "random_slices" (random slices of random cases) or "guided" (the entries
    of ``worklist`` by decreasing score); see nnunetv2.annotation.guided_scribbles. worklist: worklist.json,
    worklist.csv or their folder (guided only). dataset: id, name or dataset.json for the file ending, the
    reader-writer and the unannotated value (default: a dataset.json in the prediction folder).
    """
    from nnunetv2.annotation.worklist import load_worklist
    from nnunetv2.utilities.file_io import save_json

    prediction_folder, reference_folder, output_folder = (
        Path(prediction_folder),
        Path(reference_folder),
        Path(output_folder),
    )
    _check_settings(placement, worklist, budget, axis, seed)
    for name, folder in (("prediction", prediction_folder), ("reference", reference_folder)):
        if output_folder.resolve() == folder.resolve():
            raise NnUNetError(f"{output_folder}: the output folder must differ from the {name} folder")
    dataset_json = dataset_json_for(dataset, prediction_folder, reference_folder)
    ending = dataset_json.file_ending if dataset_json is not None else None
    reader_name = dataset_json.overwrite_image_reader_writer if dataset_json is not None else None
    predictions = _case_files(prediction_folder, ending, "predictions")
    references = _case_files(reference_folder, ending, "reference segmentations")
    missing = sorted(set(predictions) - set(references))
    if missing:
        raise NnUNetError(
            f"{reference_folder}: no reference for case '{missing[0]}' ({len(missing)} of "
            f"{len(predictions)} cases missing)"
        )
    unannotated = unannotated_value_for(unannotated_value, dataset_json, output_folder)
    entries = load_worklist(worklist) if worklist is not None else None

    prediction_maps, reference_maps, properties = {}, {}, {}
    for case, path in predictions.items():
        prediction_maps[case], properties[case] = read_segmentation(path, reader_name)
        reference_maps[case], _ = read_segmentation(references[case], reader_name)
        _check_case(
            case, path, references[case], prediction_maps[case], reference_maps[case], unannotated, dataset_json, axis
        )
    wrong_per_case = {
        c: int(np.count_nonzero((prediction_maps[c] != reference_maps[c]) & (reference_maps[c] != unannotated)))
        for c in predictions
    }
    wrong = sum(wrong_per_case.values())
    voxels = int(budget) if isinstance(budget, (int, np.integer)) else int(np.floor(budget * wrong))
    try:
        scribbles = simulate_pool_correction_scribbles(
            reference_maps,
            prediction_maps,
            unannotated,
            voxels,
            placement,
            entries,
            seed=seed,
            axis=axis,
            min_region_size=min_region_size,
            strokes_per_region=strokes_per_region,
            thickness=thickness,
        )
    except NnUNetError as e:
        raise type(e)(f"{worklist}: {e}" if entries is not None else str(e)) from None

    _check_output_folder(output_folder, predictions, ending or _ending_of(predictions))
    output_folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, dict[str, Any]] = {}
    for case, drawn in scribbles.items():
        path = output_folder / predictions[case].name
        reader_writer_for_file(path, reader_name).write_seg(drawn, path, properties[case])
        counts = np.bincount(drawn[drawn != unannotated].astype(np.int64).ravel())
        cases[case] = {
            "scribbled_voxels": int(counts.sum()),
            "wrong_voxels": wrong_per_case[case],
            "voxels_per_class": {str(c): int(n) for c, n in enumerate(counts) if n},
        }
    scribbled = sum(c["scribbled_voxels"] for c in cases.values())
    summary = {
        "placement": placement,
        "budget": budget,
        "budget_voxels": voxels,
        "scribbled_voxels": scribbled,
        "unspent_budget_reasons": unspent_budget_reasons(
            reference_maps,
            prediction_maps,
            unannotated,
            voxels - scribbled,
            placement,
            len(entries or ()),
            min_region_size,
            strokes_per_region,
            thickness,
        ),
        "wrong_voxels": wrong,
        "seed": seed,
        "axis": axis,
        "unannotated_value": unannotated,
        "min_region_size": min_region_size,
        "strokes_per_region": strokes_per_region,
        "thickness": thickness,
        "predictions": str(prediction_folder.resolve()),
        "references": str(reference_folder.resolve()),
        "worklist": None if worklist is None else str(Path(worklist).resolve()),
        "cases": cases,
    }
    save_json(summary, output_folder / SUMMARY_FILE)
    logger.debug(
        "%s: %d of %d budget voxels scribbled in %d cases",
        output_folder,
        summary["scribbled_voxels"],
        voxels,
        sum(1 for c in cases.values() if c["scribbled_voxels"]),
    )
    return summary


def unspent_budget_reasons(
    references: dict[str, np.ndarray],
    predictions: dict[str, np.ndarray],
    unannotated: int,
    unspent: int,
    placement: str,
    num_entries: int,
    min_region_size: int,
    strokes_per_region: int,
    thickness: int,
) -> list[str]:
    """Return why ``unspent`` budget voxels were left (one sentence each; [] when the budget was spent)."""
    from nnunetv2.scribble_loop.correction_scribbles import error_regions

    if unspent <= 0:
        return []
    wrong_total, small, large_regions = 0, 0, 0
    for case, reference in references.items():
        reference3d = reference if reference.ndim == 3 else reference[None]
        wrong = (predictions[case].reshape(reference3d.shape) != reference3d) & (reference3d != unannotated)
        _, sizes, _ = error_regions(reference3d, wrong)
        wrong_total += int(wrong.sum())
        small += int(sizes[sizes < min_region_size].sum())
        large_regions += int(np.count_nonzero(sizes >= min_region_size))
    reasons = []
    if small:
        reasons.append(
            f"{small} of the {wrong_total} wrong voxels lie in error regions under --min_region_size "
            f"{min_region_size} voxels, which get no stroke"
        )
    if placement == "guided":
        reasons.append(
            f"all {num_entries} worklist entries were visited (an entry whose box holds no correctable error costs "
            f"nothing; a longer worklist, --budget of nnUNetv2_suggest_annotations, spends more)"
        )
    elif placement == "random_slices":
        reasons.append("every slice of every case was opened once, with one stroke in its largest wrong piece")
    else:
        reasons.append(
            f"each of the {large_regions} error regions of at least --min_region_size voxels gets at most "
            f"--strokes_per_region {strokes_per_region} stroke(s) of --thickness {thickness} in one slice"
        )
    return reasons


def _check_settings(placement: str, worklist, budget, axis, seed) -> None:
    if placement not in PLACEMENTS:
        raise NnUNetError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    if placement == "guided" and worklist is None:
        raise NnUNetError("placement 'guided' needs a worklist (-w, written by nnUNetv2_suggest_annotations)")
    if placement != "guided" and worklist is not None:
        raise NnUNetError(f"a worklist (-w) is only used with placement 'guided', not '{placement}'")
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, float, np.integer, np.floating))
        or (isinstance(budget, (int, np.integer)) and budget < 0)
        or (isinstance(budget, (float, np.floating)) and not 0.0 < budget <= 1.0)
    ):
        raise NnUNetError(
            f"budget must be a voxel count (integer >= 0) or a fraction of the wrong voxels in (0, 1], got {budget!r}"
        )
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise NnUNetError(f"axis must be 0, 1 or 2, got {axis!r}")
    check_number("seed", seed, "integer >= 0")


def _case_files(folder: Path, ending: str | None, what: str) -> dict[str, Path]:
    """``case -> file`` of ``folder``: files with ``ending``, or (no dataset.json) the image files of one ending."""
    if ending is None:
        files = index_case_files(folder, what=what)
        if len({_ending_of({c: p}) for c, p in files.items()}) > 1:
            raise NnUNetError(f"{folder}: {what} of several file endings; name the dataset (-d)")
    else:
        if not folder.is_dir():
            raise NnUNetError(f"{folder}: {what} folder not found")
        files = {p.name[: -len(ending)]: p for p in list_files(folder, ending)}
    if not files:
        raise NnUNetError(f"{folder}: no {what} found{f' (CASE{ending})' if ending else ''}")
    return files


def _ending_of(files: dict[str, Path]) -> str:
    from nnunetv2.imageio.registry import file_ending_of

    return file_ending_of(next(iter(files.values())).name)


def _check_case(
    case: str,
    prediction_file: Path,
    reference_file: Path,
    prediction: np.ndarray,
    reference: np.ndarray,
    unannotated: int,
    dataset_json,
    axis: int,
) -> None:
    """One clear error for a case the simulation cannot use."""
    if prediction.shape != reference.shape:
        raise NnUNetError(
            f"{reference_file}: shape {list(reference.shape)} differs from the prediction's {list(prediction.shape)}"
        )
    if np.any(prediction == unannotated):
        raise NnUNetError(
            f"{prediction_file}: holds the unannotated value {unannotated} (pass another one with --unannotated)"
        )
    if prediction.shape[0] == 1 and axis != 0:
        raise NnUNetError(f"{prediction_file}: a 2D image has only slices along axis 0, got axis {axis}")
    if dataset_json is not None:
        from nnunetv2.dataset.label_manager import LabelManager

        allowed = set(LabelManager.from_dataset_json(dataset_json).all_labels) | {unannotated}
        unknown = sorted(set(np.unique(reference).tolist()) - allowed)
        if unknown:
            raise NnUNetError(
                f"{reference_file}: value {unknown[0]} is neither a label of the dataset nor the "
                f"unannotated value {unannotated}"
            )
    logger.debug("%s: checked", case)


def _check_output_folder(folder: Path, cases: dict[str, Path], ending: str) -> None:
    """Refuse a folder holding scribble files of other cases: the pseudo-label commands would reject it."""
    if not folder.is_dir():
        return
    names = {p.name for p in cases.values()}
    other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(ending) and p.name not in names)
    if other:
        raise NnUNetError(f"{folder}: holds {other[0]}, a file of no case in the predictions; use an empty folder")
