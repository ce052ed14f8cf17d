"""The report's HTML page: title, legend, the sortable case table and its pictures.

The page is self-contained: pictures are linked by paths relative to it (the folder can be moved,
zipped or opened from disk without a server), the style and the table-sorting script are inline,
and nothing is fetched from elsewhere. All text is HTML-escaped. The legend names every label
colour, the scribble colours, the worklist box and the heat map's scale (the same colours as the
pictures' colour bar); under each picture its worklist entries are listed in viewer terms, the ITK
voxel index (x, y, z) and the physical point in mm.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from nnunetv2.annotation.worklist import AXIS_NAMES, WorklistEntry
from nnunetv2.visualization.overlay_pngs import RenderedSlice

REPORT_FILE = "index.html"
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
    worklist_entries: dict[int, WorklistEntry] = field(default_factory=dict)  # rank -> entry


@dataclass(frozen=True)
class Legend:
    """What the report's pictures show, for the legend above the table."""

    label_names: dict[int, str]
    scribbles: bool = False
    worklist: bool = False
    heat_map_name: str | None = None  # None: no heat map
    reference: bool = False  # a reference panel is drawn beside the prediction


_SORT_SCRIPT = """
document.querySelectorAll("th").forEach(function (header, column) {
  header.addEventListener("click", function () {
    var body = header.closest("table").tBodies[0];
    var ascending = header.dataset.order !== "ascending";
    document.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
    header.dataset.order = ascending ? "ascending" : "descending";
    var key = function (row) {
      var text = row.cells[column].dataset.value || row.cells[column].textContent.trim();
      var number = parseFloat(text);
      return text === "" ? null : (isNaN(number) ? text.toLowerCase() : number);
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === y) return 0;
      if (x === null) return 1;  // empty cells last in both orders
      if (y === null) return -1;
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def write_report_html(
    rows: Sequence[ReportRow],
    output_folder: str | os.PathLike,
    title: str,
    legend: Legend,
    sources: dict[str, str] | None = None,
) -> Path:
    """Write ``output_folder/index.html`` for ``rows`` (pictures linked relative to it); return its path.

    sources: what the report was made from (shown as given; pass paths relative to the report)."""
    from nnunetv2.utilities.file_io import atomic_path

    output_folder = Path(output_folder)
    label_names = legend.label_names
    labels = sorted(label_names)
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
        cells.append("".join(_figure(p, output_folder, row.worklist_entries) for p in row.pictures))
        body.append(f'<tr id="{_attr("case-" + row.case)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    foot = ""
    if has_dice:
        means = [_nanmean([r.dice.get(v, math.nan) for r in rows]) for v in labels]
        cells = ["mean"] + [_number(m) for m in means] + [_number(_nanmean(means))]
        cells += [""] * (len(head) - len(cells))
        foot = "<tfoot><tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr></tfoot>"
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
th {{ background: #f0f0f0; cursor: pointer; white-space: nowrap; }}
th[data-order="ascending"]::after {{ content: " \\25B2"; }}
th[data-order="descending"]::after {{ content: " \\25BC"; }}
tfoot td {{ font-weight: bold; }}
figure {{ display: inline-block; margin: 0 6px 6px 0; }}
figure img {{ image-rendering: pixelated; display: block; }}
figcaption {{ font-size: 0.8em; color: #555; max-width: 60em; }}
figcaption ol {{ margin: 0.2em 0; padding-left: 1.5em; }}
.legend {{ line-height: 1.8; }}
.swatch {{ display: inline-block; width: 1em; height: 1em; margin: 0 0.3em 0 0.8em; vertical-align: middle;
  border: 1px solid #444; box-sizing: border-box; }}
.swatch.box {{ background: none; border: 2px solid; }}
.bar {{ display: inline-block; width: 12em; height: 1em; vertical-align: middle; margin: 0 0.3em; }}
</style>
</head>
<body>
<h1>{_text(title)}</h1>
<p>{len(rows)} cases. Click a column heading to sort by it.</p>
{_legend_html(legend)}
<ul>{listed}</ul>
<table>
<thead><tr>{"".join(f"<th>{_text(h)}</th>" for h in head)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
{foot}
</table>
<script>{_SORT_SCRIPT}</script>
</body>
</html>
"""
    path = output_folder / REPORT_FILE
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(document, encoding="utf-8")
    return path


def _legend_html(legend: Legend) -> str:
    """The legend: label colours with names, panels, scribbles, worklist box, and the heat map's scale."""
    from nnunetv2.visualization.overlay import BACKGROUND_SCRIBBLE_COLOUR, BOX_COLOUR, heat_colours, label_palette

    labels = sorted(legend.label_names)
    palette = label_palette(max(labels, default=0))
    parts = [
        f'<span class="swatch" style="background:{_hex(palette[v])}"></span>{v}: {_text(legend.label_names[v])}'
        for v in labels
    ]
    lines = [f"<b>Labels</b> {' '.join(parts) or 'none'}"]
    if legend.reference:
        lines.append("<b>Panels</b> left: reference labels, right of it: the prediction")
    if legend.scribbles:
        white = _hex(np.asarray(BACKGROUND_SCRIBBLE_COLOUR))
        lines.append(
            f'<b>Scribbles</b> opaque, in the colour of their class; <span class="swatch" '
            f'style="background:{white}"></span>background'
        )
    if legend.worklist:
        lines.append(
            f'<b>Worklist</b> <span class="swatch box" style="border-color:{_hex(np.array(BOX_COLOUR) / 255)}">'
            "</span>a region to annotate, tagged with its rank (#1 first)"
        )
    if legend.heat_map_name is not None:
        stops = ", ".join(_hex(c) for c in heat_colours(np.linspace(0.0, 1.0, 11)))
        lines.append(
            f"<b>Heat map</b> {_text(legend.heat_map_name)}: 0"
            f'<span class="bar" style="background:linear-gradient(to right, {stops})"></span>1 '
            "(its own panel; the image underneath is dimmed, and the colour fades out towards 0)"
        )
    return '<div class="legend">' + "<br>".join(lines) + "</div>"


def _figure(picture: RenderedSlice, output_folder: Path, entries: dict[int, WorklistEntry]) -> str:
    """An image linked to itself, captioned with its slice and its worklist entries in viewer terms."""
    link = quote(Path(os.path.relpath(picture.file, output_folder)).as_posix())
    caption = f"{AXIS_NAMES[picture.axis]} {picture.slice}" + (" · most foreground" if picture.most_foreground else "")
    if picture.worklist_ranks:
        caption += " · worklist " + ", ".join(f"#{r}" for r in picture.worklist_ranks)
    listed = "".join(f"<li>{_text(_viewer_terms(entries[r]))}</li>" for r in picture.worklist_ranks if r in entries)
    # small pictures are enlarged by a whole factor, large ones never shrunk: both keep every pixel (and box line)
    factor = max(1, math.ceil(MIN_DISPLAY_HEIGHT / picture.size[0]))
    return (
        f'<figure><a href="{_attr(link)}"><img src="{_attr(link)}" alt="{_attr(picture.case + " " + caption)}" '
        f'height="{picture.size[0] * factor}" width="{picture.size[1] * factor}"></a>'
        f"<figcaption>{_text(caption)}{'<ul>' + listed + '</ul>' if listed else ''}</figcaption></figure>"
    )


def _viewer_terms(entry: WorklistEntry) -> str:
    """``#rank: voxel (x, y, z) = (...), point (...) mm`` (what a viewer's cursor shows)."""
    if entry.voxel_xyz is None:  # a worklist written before viewer coordinates were recorded
        return f"#{entry.rank}: array box (z, y, x) {[list(pair) for pair in entry.bbox]}"
    text = f"#{entry.rank}: voxel (x, y, z) = ({', '.join(str(v) for v in entry.voxel_xyz)})"
    if entry.point_mm is not None:
        text += f", point ({', '.join(f'{v:.1f}' for v in entry.point_mm)}) mm"
    return text


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
