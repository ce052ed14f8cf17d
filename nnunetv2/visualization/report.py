"""A self-contained HTML report of a folder of segmentations (nnUNetv2_make_report).

``OUT/index.html`` (see report_page.py) lists every case with its overlay PNGs (``OUT/pngs/``),
its Dice per label when reference labels are given (the reference is drawn beside the
prediction), its uncertainty score and its worklist rank. Rows follow the worklist's case order when
there is a worklist, else the case names. The default title names the dataset and the model, read
from the segmentation folder's prediction record (predict_from_raw_data_args.json, or the checkpoint
run behind an nnUNetv2_uncertainty folder) and its plans.json / dataset.json.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnunetv2.exceptions import NnUNetError
from nnunetv2.visualization.overlay_pngs import OverlayOptions
from nnunetv2.visualization.report_page import REPORT_FILE, Legend, ReportRow, write_report_html

if TYPE_CHECKING:
    from nnunetv2.visualization.case_layers import OverlayInputs

logger = logging.getLogger(__name__)

PICTURES_FOLDER = "pngs"
__all__ = ["REPORT_FILE", "PICTURES_FOLDER", "ReportRow", "make_report", "write_report_html"]


def make_report(
    images_folder: str | os.PathLike,
    segs_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    reference_folder: str | os.PathLike | None = None,
    uncertainty_folder: str | os.PathLike | None = None,
    scribbles_folder: str | os.PathLike | None = None,
    worklist: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
    options: OverlayOptions = OverlayOptions(),
    title: str | None = None,
    progress: bool = True,
) -> Path:
    """Render the overlays of every case of ``segs_folder`` and write ``output_folder/index.html``; return its path.

    reference_folder: reference labels ``CASE{ending}`` for Dice; uncertainty_folder: maps (heat-map
    panel) and score table; worklist: a worklist file or folder (slices boxed, ranks in the table).
    """
    from nnunetv2.annotation.case_files import index_case_files, load_case_scores
    from nnunetv2.annotation.worklist import load_worklist, load_worklist_cases
    from nnunetv2.visualization.case_layers import folder_inputs
    from nnunetv2.visualization.overlay_pngs import plot_overlays

    output_folder = Path(output_folder)
    inputs = folder_inputs(images_folder, segs_folder, dataset, uncertainty_folder, scribbles_folder, unannotated_value)
    entries = load_worklist(worklist) if worklist is not None else []
    case_ranks = {
        case: summary.get("case_rank")
        for case, summary in (load_worklist_cases(worklist) if worklist is not None else {}).items()
    }
    for entry in entries:
        case_ranks.setdefault(entry.case, entry.case_rank)
    references = index_case_files(reference_folder, what="reference labels") if reference_folder else {}
    if references:
        inputs.references = {case: references[case] for case in inputs.cases if case in references}
        inputs.segmentation_title = "prediction"
    pictures = plot_overlays(inputs, output_folder / PICTURES_FOLDER, options, entries, progress)
    scores = load_case_scores(uncertainty_folder) if uncertainty_folder is not None else {}
    rows = []
    for case, slices in pictures.items():
        row = ReportRow(
            case,
            slices,
            uncertainty_score=scores.get(case),
            worklist_rank=case_ranks.get(case),
            worklist_regions=sum(1 for e in entries if e.case == case),
            worklist_entries={e.rank: e for e in entries if e.case == case},
        )
        segmentation = inputs.cases[case].segmentation
        if case in references and segmentation is not None:
            row.dice = _dice_per_label(references[case], segmentation, inputs)
        rows.append(row)
    rows.sort(key=lambda r: (r.worklist_rank is None, r.worklist_rank or 0, r.case))
    label_names = dict(inputs.label_names) or {v: str(v) for r in rows for v in r.dice}
    title = title or describe_segmentations(segs_folder)
    sources = {
        "images": images_folder,
        "segmentations": segs_folder,
        "reference labels": reference_folder,
        "uncertainty": uncertainty_folder,
        "scribbles": scribbles_folder,
        "worklist": worklist,
    }
    legend = Legend(
        label_names,
        scribbles=scribbles_folder is not None,
        worklist=bool(entries),
        heat_map_name=inputs.heat_map_name if uncertainty_folder is not None else None,
        reference=bool(inputs.references),
    )
    output_folder.mkdir(parents=True, exist_ok=True)
    relative = {
        k: Path(os.path.relpath(Path(v).resolve(), output_folder.resolve())).as_posix()
        for k, v in sources.items()
        if v is not None
    }
    path = write_report_html(rows, output_folder, title, legend, relative)
    logger.debug("wrote %s (%d cases)", path, len(rows))
    return path


def describe_segmentations(segs_folder: str | os.PathLike) -> str:
    """Return a title naming the dataset and the model behind a folder of segmentations (what its records say)."""
    from nnunetv2.utilities.file_io import load_json

    folder = Path(segs_folder)
    dataset = None
    for name, key in (("plans.json", "dataset_name"), ("dataset.json", "name")):
        content = _json_object(folder / name, load_json)
        if isinstance(content.get(key), str) and content[key]:
            dataset = content[key]
            break
    model = None
    record = _json_object(folder / "predict_from_raw_data_args.json", load_json)
    if record.get("model_folder"):
        folds = record.get("folds") or []
        model = f"{Path(str(record['model_folder'])).name}, folds {', '.join(str(f) for f in folds)}"
    scores = _json_object(folder / "uncertainty_scores.json", load_json)
    if scores.get("checkpoint_predictions"):
        run = _json_object(Path(str(scores["checkpoint_predictions"])) / "checkpoint_predictions.json", load_json)
        if run.get("model_folder"):
            model = (
                f"{Path(str(run['model_folder'])).name}, checkpoint ensemble of {len(run.get('members', []))}"
                f" ({scores.get('measure', 'uncertainty')})"
            )
    return f"{dataset or 'dataset not recorded'}: segmentations by {model or 'a model not recorded'} ({folder.name})"


def _json_object(path: Path, load_json) -> dict:
    """The JSON object in ``path``; {} when the file is missing or holds something else."""
    if not path.is_file():
        return {}
    content = load_json(path)
    return content if isinstance(content, dict) else {}


def _dice_per_label(reference_file: Path, segmentation_file: Path, inputs: OverlayInputs) -> dict[int, float]:
    """Dice of every foreground label of the dataset (or present in either map); the ignore label is skipped."""
    from nnunetv2.annotation.case_files import read_segmentation
    from nnunetv2.evaluation.metrics import metrics_from_segmentations

    reference, _ = read_segmentation(reference_file, inputs.reader_name)
    segmentation, _ = read_segmentation(segmentation_file, inputs.reader_name)
    if reference.shape != segmentation.shape:
        raise NnUNetError(
            f"{reference_file}: shape {list(reference.shape)} differs from the segmentation's "
            f"{list(segmentation.shape)} ({segmentation_file})"
        )
    ignore = inputs.hidden_labels[0] if inputs.hidden_labels else None
    labels = sorted(inputs.label_names) or [
        int(v) for v in np.union1d(np.unique(reference), np.unique(segmentation)) if v > 0 and v != ignore
    ]
    if not labels:
        return {}
    metrics = metrics_from_segmentations(reference, segmentation, labels, ignore)
    return {label: float(metrics[label]["Dice"]) for label in labels}
