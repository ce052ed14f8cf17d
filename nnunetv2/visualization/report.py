"""A self-contained HTML report of a folder of segmentations (nnUNetv2_make_report).

``OUT/index.html`` lists every case with its overlay PNGs (``OUT/pngs/``, linked by relative paths,
so the folder can be moved, zipped or opened from disk without a server), its Dice per label when
reference labels are given, its uncertainty score and its worklist rank. Rows follow the worklist's
case order when there is a worklist, else the case names. All text is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from nnunetv2.exceptions import NnUNetError
from nnunetv2.visualization.overlay_pngs import OverlayOptions, RenderedSlice

if TYPE_CHECKING:
    from nnunetv2.visualization.case_layers import OverlayInputs

logger = logging.getLogger(__name__)

REPORT_FILE = "index.html"
PICTURES_FOLDER = "pngs"
MIN_DISPLAY_HEIGHT = 128  # pixels; smaller pictures are shown enlarged


@dataclass
class ReportRow:
    """One case of the report table."""

    case: str
    pictures: list[RenderedSlice]
    dice: dict[int, float] = field(default_factory=dict)  # label -> Dice (empty without a reference)
    uncertainty_score: float | None = None
    worklist_rank: int | None = None  # the case's rank in the worklist
    worklist_regions: int = 0


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
    pictures = plot_overlays(inputs, output_folder / PICTURES_FOLDER, options, entries, progress)
    scores = load_case_scores(uncertainty_folder) if uncertainty_folder is not None else {}
    references = index_case_files(reference_folder, what="reference labels") if reference_folder else {}
    rows = []
    for case, slices in pictures.items():
        row = ReportRow(
            case,
            slices,
            uncertainty_score=scores.get(case),
            worklist_rank=case_ranks.get(case),
            worklist_regions=sum(1 for e in entries if e.case == case),
        )
        segmentation = inputs.cases[case].segmentation
        if case in references and segmentation is not None:
            row.dice = _dice_per_label(references[case], segmentation, inputs)
        rows.append(row)
    rows.sort(key=lambda r: (r.worklist_rank is None, r.worklist_rank or 0, r.case))
    label_names = dict(inputs.label_names) or {v: str(v) for r in rows for v in r.dice}
    title = title or f"Segmentations of {Path(segs_folder).resolve().name}"
    sources = {
        "images": images_folder,
        "segmentations": segs_folder,
        "reference labels": reference_folder,
        "uncertainty": uncertainty_folder,
        "scribbles": scribbles_folder,
        "worklist": worklist,
    }
    return write_report_html(
        rows,
        output_folder,
        title,
        label_names,
        {k: str(Path(v).resolve()) for k, v in sources.items() if v is not None},
    )


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


def write_report_html(
    rows: Sequence[ReportRow],
    output_folder: str | os.PathLike,
    title: str,
    label_names: dict[int, str],
    sources: dict[str, str] | None = None,
) -> Path:
    """Write ``output_folder/index.html`` for ``rows`` (pictures linked relative to it); return its path."""
    from nnunetv2.utilities.file_io import atomic_path
    from nnunetv2.visualization.overlay import BOX_COLOUR, label_palette

    output_folder = Path(output_folder)
    labels = sorted(label_names)
    palette = label_palette(max(labels, default=0))
    has_dice = any(r.dice for r in rows)
    has_scores = any(r.uncertainty_score is not None for r in rows)
    has_worklist = any(r.worklist_rank is not None for r in rows)
    head = (
        ["case"]
        + ([f"Dice {label_names[v]}" for v in labels] + ["mean Dice"] if has_dice else [])
        + (["uncertainty score"] if has_scores else [])
        + (["worklist rank", "worklist regions"] if has_worklist else [])
        + ["slices"]
    )
    body = []
    for row in rows:
        cells = [_text(row.case)]
        if has_dice:
            values = [row.dice.get(v, math.nan) for v in labels]
            cells += [_number(v) for v in values] + [_number(_nanmean(values))]
        if has_scores:
            cells.append(_number(row.uncertainty_score))
        if has_worklist:
            cells += ["" if row.worklist_rank is None else str(row.worklist_rank), str(row.worklist_regions)]
        cells.append("".join(_figure(p, output_folder) for p in row.pictures))
        body.append(f'<tr id="{_attr("case-" + row.case)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    foot = ""
    if has_dice:
        means = [_nanmean([r.dice.get(v, math.nan) for r in rows]) for v in labels]
        cells = ["mean"] + [_number(m) for m in means] + [_number(_nanmean(means))]
        cells += [""] * (len(head) - len(cells))
        foot = "<tfoot><tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr></tfoot>"
    legend = " ".join(
        f'<span class="swatch" style="background:{_hex(palette[v])}"></span>{_text(label_names[v])}' for v in labels
    )
    if has_worklist:
        legend += (
            f' <span class="swatch box" style="border-color:{_hex(np.array(BOX_COLOUR) / 255)}"></span>worklist region'
        )
    listed = "".join(f"<li>{_text(k)}: <code>{_text(v)}</code></li>" for k, v in (sources or {}).items())
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_text(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
tfoot td {{ font-weight: bold; }}
figure {{ display: inline-block; margin: 0 6px 0 0; }}
figure img {{ image-rendering: pixelated; display: block; }}
figcaption {{ font-size: 0.8em; color: #555; }}
.swatch {{ display: inline-block; width: 1em; height: 1em; margin: 0 0.3em 0 0.8em; vertical-align: middle; }}
.swatch.box {{ background: none; border: 2px solid; box-sizing: border-box; }}
</style>
</head>
<body>
<h1>{_text(title)}</h1>
<p>{len(rows)} cases. Labels: {legend or "none"}</p>
<ul>{listed}</ul>
<table>
<thead><tr>{"".join(f"<th>{_text(h)}</th>" for h in head)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
{foot}
</table>
</body>
</html>
"""
    path = output_folder / REPORT_FILE
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(document, encoding="utf-8")
    logger.debug("wrote %s (%d cases)", path, len(rows))
    return path


def _figure(picture: RenderedSlice, output_folder: Path) -> str:
    """An image linked to itself, with its slice (and worklist ranks) as caption; the path relative to the report."""
    from nnunetv2.annotation.worklist import AXIS_NAMES

    link = quote(Path(os.path.relpath(picture.file, output_folder)).as_posix())
    caption = f"{AXIS_NAMES[picture.axis]} {picture.slice}" + (" · most foreground" if picture.most_foreground else "")
    if picture.worklist_ranks:
        caption += " · worklist " + ", ".join(f"#{r}" for r in picture.worklist_ranks)
    # small pictures are enlarged by a whole factor, large ones never shrunk: both keep every pixel (and box line)
    factor = max(1, math.ceil(MIN_DISPLAY_HEIGHT / picture.size[0]))
    return (
        f'<figure><a href="{_attr(link)}"><img src="{_attr(link)}" alt="{_attr(picture.case + " " + caption)}" '
        f'height="{picture.size[0] * factor}" width="{picture.size[1] * factor}"></a>'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
    )


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _number(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb)
