"""Write an annotation worklist for a pool of cases from their uncertainty maps (nnUNetv2_suggest_annotations).

Inputs: the output folder of nnUNetv2_uncertainty (maps, ensemble segmentations, score table,
dataset.json) or a folder of float maps ``{case}_uncertainty{ending}`` (see case_files.py); optionally
``PREDICTIONS/{case}{ending}`` (to name each region's predicted label; default: the segmentations
next to the maps) and ``SCRIBBLES/{case}{ending}`` (existing scribbles; regions near them rank lower).
Outputs: ``OUT/worklist.json`` and ``OUT/worklist.csv`` (see worklist.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from nnunetv2.annotation.case_files import (
    dataset_json_for,
    find_uncertainty_maps,
    index_case_files,
    load_case_scores,
    read_segmentation,
    read_uncertainty_map,
    unannotated_value_for,
)
from nnunetv2.annotation.ranking import (
    DEFAULT_EXCLUSION_RADIUS,
    DEFAULT_WINDOW_RADIUS,
    build_worklist,
    find_uncertain_regions,
)
from nnunetv2.annotation.worklist import WorklistEntry, save_worklist
from nnunetv2.exceptions import NnUNetError

logger = logging.getLogger(__name__)


def suggest_annotations(
    uncertainty_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    predictions_folder: str | os.PathLike | None = None,
    scribbles_folder: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
    axis: int = 0,
    budget: int = 50,
    threshold: float = 0.5,
    min_region_size: int = 10,
    distance_scale: float = 5.0,
    max_per_case: int | None = None,
    window_radius: float = DEFAULT_WINDOW_RADIUS,
    exclusion_radius: float = DEFAULT_EXCLUSION_RADIUS,
    progress: bool = True,
) -> list[WorklistEntry]:
    """Rank every case's uncertain regions, write ``worklist.json``/``.csv`` to ``output_folder``; return the entries.

    uncertainty_folder: nnUNetv2_uncertainty's output folder, or a folder of ``CASE_uncertainty`` float maps.
    axis: slices are perpendicular to this array axis (0 = z of ``(z, y, x)``); threshold: voxels with
    at least this uncertainty form regions; min_region_size: smaller regions (voxels in the slice)
    are dropped; budget: the most entries; window_radius, distance_scale, exclusion_radius: see
    ranking.py; dataset: id, name or dataset.json for the reader and the scribbles' unannotated value
    (default: the dataset.json of the predictions folder).
    """
    from nnunetv2.utilities.progress import progress_bar

    source = find_uncertainty_maps(uncertainty_folder)
    maps = source.maps
    if predictions_folder is None:
        predictions_folder = source.segmentations_folder
    dataset_json = dataset_json_for(dataset, predictions_folder, uncertainty_folder, scribbles_folder)
    reader_name = dataset_json.overwrite_image_reader_writer if dataset_json is not None else None
    predictions = _matching_files(predictions_folder, maps, "prediction", required=True)
    scribbles = _matching_files(scribbles_folder, maps, "scribble file", required=False)
    unannotated = unannotated_value_for(unannotated_value, dataset_json, scribbles_folder) if scribbles else None

    regions = {}
    geometry = {}
    for case, map_file in progress_bar(maps.items(), desc="uncertain regions", unit="case", disable=not progress):
        uncertainty, properties = read_uncertainty_map(map_file, source, reader_name)
        geometry[case] = properties
        prediction = _read_matching(predictions.get(case), uncertainty.shape, reader_name)
        drawn = _read_matching(scribbles.get(case), uncertainty.shape, reader_name)
        try:
            regions[case] = find_uncertain_regions(
                uncertainty,
                axis,
                threshold,
                min_region_size,
                properties["spacing"],
                None if drawn is None else drawn != unannotated,
                prediction,
                window_radius,
            )
        except NnUNetError as e:
            raise type(e)(f"{map_file}: {e}") from None
        logger.debug("%s: %d candidate regions", case, len(regions[case]))
    entries, cases = build_worklist(regions, budget, distance_scale, max_per_case, exclusion_radius)
    entries = [with_viewer_coordinates(e, geometry[e.case]) for e in entries]
    scores = load_case_scores(uncertainty_folder)
    for case, summary in cases.items():
        summary["uncertainty_score"] = scores.get(case)
    parameters = {
        "axis": axis,
        "budget": budget,
        "threshold": threshold,
        "min_region_size": min_region_size,
        "distance_scale": distance_scale,
        "max_per_case": max_per_case,
        "window_radius": window_radius,
        "exclusion_radius": exclusion_radius,
        "uncertainty_folder": str(Path(uncertainty_folder).resolve()),
        "scribbles_folder": None if scribbles_folder is None else str(Path(scribbles_folder).resolve()),
        "unannotated_value": unannotated,
    }
    save_worklist(entries, output_folder, parameters, cases)
    return entries


def with_viewer_coordinates(entry: WorklistEntry, properties: dict) -> WorklistEntry:
    """Return ``entry`` with the ITK voxel index and the physical point of its box's centre (image ``properties``)."""
    from dataclasses import replace

    from nnunetv2.annotation.worklist import box_centre
    from nnunetv2.imageio.geometry import itk_index, voxel_to_world

    centre = box_centre(entry.bbox)
    x, y, z = (int(v) for v in itk_index(centre))
    px, py, pz = (round(v, 3) for v in voxel_to_world(properties, centre))
    return replace(entry, voxel_xyz=(x, y, z), point_mm=(px, py, pz))


def _matching_files(
    folder: str | os.PathLike | None, maps: dict[str, Path], what: str, required: bool
) -> dict[str, Path]:
    """``case -> file`` of ``folder`` for the cases of ``maps``: every case needs one when ``required``, else
    every file must belong to a case. ``what`` names one file (e.g. "prediction")."""
    if folder is None:
        return {}
    files = index_case_files(folder, what=f"{what}s")
    unknown = sorted(set(files) - set(maps))
    if unknown and not required:
        raise NnUNetError(f"{files[unknown[0]]}: {what} of no case with an uncertainty map")
    missing = sorted(set(maps) - set(files))
    if missing and required:
        raise NnUNetError(f"{folder}: no {what} for case '{missing[0]}' ({len(missing)} of {len(maps)} cases missing)")
    return {case: files[case] for case in maps if case in files}


def _read_matching(path: Path | None, shape: tuple[int, ...], reader_name: str | None) -> np.ndarray | None:
    """The label map in ``path`` (None for no file), checked against the uncertainty map's shape."""
    if path is None:
        return None
    seg, _ = read_segmentation(path, reader_name)
    if seg.shape != tuple(shape):
        raise NnUNetError(f"{path}: shape {list(seg.shape)} differs from the uncertainty map's {list(shape)}")
    return seg
