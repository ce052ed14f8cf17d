"""The annotation worklist: where to scribble next, as ``worklist.json`` and ``worklist.csv``.

One entry is one connected uncertain region in one slice of one case. Coordinates are array
indices in the reader-writers' axis order ``(z, y, x)`` (a 2D image is ``(1, y, x)``); a bounding box
is ``[start, stop)`` per axis, and along the entry's ``axis`` it spans exactly its ``slice``.
Each entry also names its place in viewer terms (imageio/geometry.py): ``voxel_xyz``, the ITK voxel
index (x, y, z) of the box's centre, as ITK-SNAP, 3D Slicer (IJK), SimpleITK and nibabel count, and
``point_mm``, that voxel's physical point in world coordinates (ITK's LPS convention, mm; 3D Slicer
shows RAS, ``(-x, -y, z)``). The CSV holds the same entries as flat columns, so a spreadsheet can
sort, trim or reorder the list; loading keeps the file's row order. Worklists written before the
viewer columns existed still load (the two fields are then None).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.file_io import atomic_path, load_json, save_json

WORKLIST_JSON = "worklist.json"
WORKLIST_CSV = "worklist.csv"
FORMAT_NAME = "nnunetv2-annotation-worklist"
FORMAT_VERSION = 2  # 2: voxel_xyz and point_mm
AXIS_NAMES = ("z", "y", "x")
VIEWER_COLUMNS = ("voxel_x", "voxel_y", "voxel_z", "point_x_mm", "point_y_mm", "point_z_mm")
CSV_COLUMNS = (
    "rank",
    "case",
    "case_rank",
    "axis",
    "slice",
    "slice_rank",
    *(f"{a}_{end}" for a in AXIS_NAMES for end in ("start", "stop")),
    "score",
    "uncertainty_mass",
    "size",
    "mean_uncertainty",
    "distance_to_scribbles",
    "predicted_label",
)


@dataclass(frozen=True)
class WorklistEntry:
    """One place to annotate: a region of uncertain voxels in one slice of one case."""

    rank: int  # 1-based position in the worklist
    case: str
    case_rank: int  # 1 = the case to open first
    axis: int  # the slice is perpendicular to this array axis
    slice: int  # index along ``axis``
    slice_rank: int  # 1 = the first slice to visit within the case
    bbox: tuple[tuple[int, int], ...]  # [start, stop) per array axis (z, y, x)
    score: float  # expected benefit
    uncertainty_mass: float  # sum of the uncertainty over the region's voxels
    size: int  # voxels in the region
    mean_uncertainty: float
    distance_to_scribbles: float | None = None  # in voxels of the finest axis; None: no scribbles yet
    predicted_label: int | None = None  # the prediction's most frequent label in the region
    voxel_xyz: tuple[int, int, int] | None = None  # ITK voxel index (x, y, z) of the box's centre
    point_mm: tuple[float, float, float] | None = None  # its physical point (LPS world coordinates, mm)

    def to_json(self) -> dict[str, Any]:
        """Return the entry as a JSON object (bbox as nested lists)."""
        fields = {**asdict(self), "bbox": [list(pair) for pair in self.bbox]}
        for name in ("voxel_xyz", "point_mm"):
            fields[name] = None if fields[name] is None else list(fields[name])
        return fields


def box_centre(bbox: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """Return the array index (z, y, x) of a ``[start, stop)`` box's centre voxel (the lower one of two)."""
    return tuple((start + stop - 1) // 2 for start, stop in bbox)


def save_worklist(
    entries: Sequence[WorklistEntry],
    output_folder: str | os.PathLike,
    parameters: dict[str, Any],
    cases: dict[str, dict[str, Any]],
) -> tuple[Path, Path]:
    """Write ``worklist.json`` (parameters, per-case summary, entries) and ``worklist.csv``; return both paths."""
    output_folder = Path(output_folder)
    json_file, csv_file = output_folder / WORKLIST_JSON, output_folder / WORKLIST_CSV
    save_json(
        {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "parameters": parameters,
            "cases": cases,
            "entries": [e.to_json() for e in entries],
        },
        json_file,
    )
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow((*CSV_COLUMNS, *VIEWER_COLUMNS))
    for e in entries:
        writer.writerow(
            [
                e.rank,
                e.case,
                e.case_rank,
                e.axis,
                e.slice,
                e.slice_rank,
                *(v for pair in e.bbox for v in pair),
                _number(e.score),
                _number(e.uncertainty_mass),
                e.size,
                _number(e.mean_uncertainty),
                "" if e.distance_to_scribbles is None else _number(e.distance_to_scribbles),
                "" if e.predicted_label is None else e.predicted_label,
                *(("",) * 3 if e.voxel_xyz is None else e.voxel_xyz),
                *(("",) * 3 if e.point_mm is None else (f"{v:.3f}" for v in e.point_mm)),
            ]
        )
    with atomic_path(csv_file) as tmp:
        tmp.write_text(text.getvalue())
    return json_file, csv_file


def _number(value: float) -> str:
    return f"{value:.6g}"


def load_worklist(path: str | os.PathLike) -> list[WorklistEntry]:
    """Return the entries of a worklist file (.json or .csv, or a folder holding worklist.json), in file order."""
    path = Path(path)
    if path.is_dir():
        path = path / WORKLIST_JSON
    if not path.is_file():
        raise NnUNetError(f"{path}: worklist not found")
    if path.suffix.lower() == ".csv":
        return _entries_from_csv(path)
    content = load_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("entries"), list):
        raise NnUNetError(f"{path}: not a worklist (expected a JSON object with an 'entries' list)")
    return [_entry_from_fields(item, path, number) for number, item in enumerate(content["entries"], start=1)]


def load_worklist_cases(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Return the per-case summary of a worklist.json (``{}`` for a CSV worklist, which has none)."""
    path = Path(path)
    if path.is_dir():
        path = path / WORKLIST_JSON
    if path.suffix.lower() == ".csv":
        return {}
    content = load_json(path)
    cases = content.get("cases", {}) if isinstance(content, dict) else {}
    return cases if isinstance(cases, dict) else {}


def _entries_from_csv(path: Path) -> list[WorklistEntry]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise NnUNetError(f"{path}: not a worklist CSV (missing column(s) {', '.join(missing)})")
        entries = []
        for number, row in enumerate(reader, start=1):
            fields: dict[str, Any] = {k: row[k] for k in CSV_COLUMNS if not k.endswith(("_start", "_stop"))}
            fields["bbox"] = [[row[f"{a}_start"], row[f"{a}_stop"]] for a in AXIS_NAMES]
            viewer = [row.get(c) or "" for c in VIEWER_COLUMNS]
            fields["voxel_xyz"] = viewer[:3] if all(viewer[:3]) else None
            fields["point_mm"] = viewer[3:] if all(viewer[3:]) else None
            entries.append(_entry_from_fields(fields, path, number))
    return entries


_MISSING = object()


def _entry_from_fields(fields: Any, path: Path, entry_number: int) -> WorklistEntry:
    """Build and check one entry from JSON values or CSV strings; raise NnUNetError naming the entry."""
    where = f"{path}: entry {entry_number}"
    if not isinstance(fields, dict):
        raise NnUNetError(f"{where}: expected an object")

    def optional_integer(name: str) -> int | None:
        return None if fields.get(name) in (None, "") else integer(name)

    def optional_number(name: str) -> float | None:
        return None if fields.get(name) in (None, "") else number(name)

    def integer(name: str, value: Any = _MISSING) -> int:
        value = fields.get(name) if value is _MISSING else value
        try:
            result = int(value) if not isinstance(value, float) or value.is_integer() else None
        except (TypeError, ValueError):
            result = None
        if result is None or isinstance(value, bool):
            raise NnUNetError(f"{where}: '{name}' must be an integer, got {value!r}")
        return result

    def number(name: str) -> float:
        value = fields.get(name)
        try:
            result = float(value)  # type: ignore[arg-type]  # None and other types fail here, as intended
        except (TypeError, ValueError):
            result = math.nan
        if not math.isfinite(result) or isinstance(value, bool):
            raise NnUNetError(f"{where}: '{name}' must be a finite number, got {value!r}")
        return result

    case = fields.get("case")
    if not isinstance(case, str) or not case:
        raise NnUNetError(f"{where}: 'case' must be a case name, got {case!r}")
    axis, index = integer("axis"), integer("slice")
    bbox = fields.get("bbox")
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 3
        or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in bbox)
    ):
        raise NnUNetError(f"{where}: 'bbox' must be three [start, stop) pairs (z, y, x), got {bbox!r}")
    box = tuple((integer("bbox", p[0]), integer("bbox", p[1])) for p in bbox)
    if axis not in (0, 1, 2):
        raise NnUNetError(f"{where}: 'axis' must be 0, 1 or 2, got {axis}")
    if any(start < 0 or stop <= start for start, stop in box):
        raise NnUNetError(f"{where}: bbox {[list(p) for p in box]} has an empty or negative range")
    if box[axis] != (index, index + 1):
        raise NnUNetError(f"{where}: bbox {[list(p) for p in box]} does not lie in slice {index} of axis {axis}")
    return WorklistEntry(
        rank=integer("rank"),
        case=case,
        case_rank=integer("case_rank"),
        axis=axis,
        slice=index,
        slice_rank=integer("slice_rank"),
        bbox=box,
        score=number("score"),
        uncertainty_mass=number("uncertainty_mass"),
        size=integer("size"),
        mean_uncertainty=number("mean_uncertainty"),
        distance_to_scribbles=optional_number("distance_to_scribbles"),
        predicted_label=optional_integer("predicted_label"),
        voxel_xyz=_triple(fields.get("voxel_xyz"), where, "voxel_xyz", integer),
        point_mm=_triple(fields.get("point_mm"), where, "point_mm", None),
    )


def _triple(value: Any, where: str, name: str, integer) -> tuple | None:
    """Three integers (``integer`` given) or finite numbers from a JSON list or CSV strings; None stays None."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise NnUNetError(f"{where}: '{name}' must be three numbers (x, y, z), got {value!r}")
    if integer is not None:
        return tuple(integer(name, v) for v in value)
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        numbers = (math.nan,)
    if not all(math.isfinite(v) for v in numbers) or any(isinstance(v, bool) for v in value):
        raise NnUNetError(f"{where}: '{name}' must be three finite numbers (x, y, z), got {value!r}")
    return numbers
