"""AnatomySketch ``.seed`` scribble files: strokes with a label and points in world coordinates.

The file is line-structured text (the header lines must match exactly, surrounding spaces aside)::

    #Anatomy Sketch Seed File
    #NUMBER OF DATA:
    2                                   number of data lists (one per drawn label)
    #DATA LIST DEFINITION:
    #DATA LIST NUMBER 0 DEFINITION:
    0 # data_list_index
    liver # data_name
    255 0 0 # r_color g_color b_color
    1 # data_label                      the class value of every stroke in this list
    1 # number_of_Line
    #Line LIST NUMBER 0 DEFINITION:
    0 # line_index
    2 # line_ViewLabel                  the view the stroke was drawn in
    -31.5 # line_dLayer                 the slice position in that view
    0 # line_nSerial
    #START_POINTS_POS
    -12.5 40.0 -31.5                    x y z in world (physical, ITK) coordinates
    ...
    #END_POINTS_POS                     any non-point line ends the list; so do a blank line,
                                        the next list's header and the end of the file
    #DATA LIST NUMBER 1 DEFINITION:
    ...

A malformed file raises DatasetError naming the line and what was expected there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import DatasetError

SEED_HEADER = "#Anatomy Sketch Seed File"
SEED_FILE_ENDING = ".seed"
_NEXT_LIST_PREFIXES = ("#Line LIST NUMBER ", "#DATA LIST NUMBER ")


@dataclass(frozen=True)
class SeedStroke:
    """One stroke: its points (n, 3) in world x, y, z and the file line of each point."""

    view: int
    layer: float
    serial: int
    points: np.ndarray
    point_lines: tuple[int, ...]


@dataclass(frozen=True)
class SeedDataList:
    """One data list: a name, a display colour, the class value of its strokes, and the strokes."""

    index: int
    name: str
    color: tuple[int, int, int]
    label: int
    strokes: tuple[SeedStroke, ...]


class _Lines:
    """The file's lines with a cursor; every read names the 1-based line number in its errors."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.lines = [line.strip() for line in lines]
        self.position = 0

    @property
    def number(self) -> int:
        return self.position + 1

    def peek(self) -> str | None:
        return self.lines[self.position] if self.position < len(self.lines) else None

    def fail(self, expected: str) -> DatasetError:
        found = self.peek()
        shown = "the end of the file" if found is None else f"'{found}'"
        return DatasetError(f"{self.path}, line {self.number}: expected {expected}, found {shown}")

    def exact(self, text: str) -> None:
        if self.peek() != text:
            raise self.fail(f"'{text}'")
        self.position += 1

    def keyed(self, key: str) -> str:
        """Read ``value # key`` and return the value."""
        line = self.peek()
        value, separator, found_key = (line or "").rpartition("#")
        if not separator or found_key.strip() != key or not value.strip():
            raise self.fail(f"'<value> # {key}'")
        self.position += 1
        return value.strip()

    def number_value(self, key: str, kind: type, check: str | None = None, expected_value: int | None = None):
        text = self.keyed(key)
        self.position -= 1  # errors point at this line
        try:
            value = kind(text)
        except ValueError:
            raise self.fail(f"a{'n integer' if kind is int else ' number'} before '# {key}'") from None
        if expected_value is not None and value != expected_value:
            raise self.fail(f"'{expected_value} # {key}'")
        if check == "non-negative" and value < 0:
            raise self.fail(f"a non-negative {key}")
        self.position += 1
        return value


def _read_points(lines: _Lines) -> tuple[np.ndarray, tuple[int, ...]]:
    points, numbers = [], []
    while True:
        line = lines.peek()
        if line is None or line.startswith(_NEXT_LIST_PREFIXES):
            break
        tokens = line.split()
        if len(tokens) != 3:
            if line == "" or line.startswith("#"):
                lines.position += 1  # the list's terminator (e.g. #END_POINTS_POS)
                break
            raise lines.fail("a point 'x y z' or the end of the point list")
        try:
            points.append([float(t) for t in tokens])
        except ValueError:
            raise lines.fail("a point 'x y z' of three numbers") from None
        if not np.all(np.isfinite(points[-1])):
            raise lines.fail("a point with finite coordinates")
        numbers.append(lines.number)
        lines.position += 1
    return np.asarray(points, dtype=float).reshape(-1, 3), tuple(numbers)


def _read_stroke(lines: _Lines, index: int) -> SeedStroke:
    lines.exact(f"#Line LIST NUMBER {index} DEFINITION:")
    lines.number_value("line_index", int, expected_value=index)
    view = lines.number_value("line_ViewLabel", int)
    layer = lines.number_value("line_dLayer", float)
    serial = lines.number_value("line_nSerial", int)
    lines.exact("#START_POINTS_POS")
    points, numbers = _read_points(lines)
    return SeedStroke(view, layer, serial, points, numbers)


def _read_data_list(lines: _Lines, index: int) -> SeedDataList:
    lines.exact(f"#DATA LIST NUMBER {index} DEFINITION:")
    lines.number_value("data_list_index", int, expected_value=index)
    name = lines.keyed("data_name")
    color_text = lines.keyed("r_color g_color b_color")
    try:
        color = tuple(int(c) for c in color_text.split())
    except ValueError:
        color = ()
    if len(color) != 3:
        lines.position -= 1
        raise lines.fail("three integers before '# r_color g_color b_color'")
    label = lines.number_value("data_label", int, check="non-negative")
    num_strokes = lines.number_value("number_of_Line", int, check="non-negative")
    strokes = tuple(_read_stroke(lines, i) for i in range(num_strokes))
    return SeedDataList(index, name, (color[0], color[1], color[2]), label, strokes)


def read_seed_file(path: str | os.PathLike) -> list[SeedDataList]:
    """Return the data lists (label + strokes) of an AnatomySketch ``.seed`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the seed file ({e})") from None
    lines = _Lines(path, text.splitlines())
    lines.exact(SEED_HEADER)
    lines.exact("#NUMBER OF DATA:")
    line = lines.peek()
    if line is None or not line.isdigit():
        raise lines.fail("the number of data lists (an integer)")
    num_lists = int(line)
    lines.position += 1
    lines.exact("#DATA LIST DEFINITION:")
    data_lists = [_read_data_list(lines, i) for i in range(num_lists)]
    while lines.peek() == "":
        lines.position += 1
    if lines.peek() is not None:
        raise lines.fail(f"the end of the file after {num_lists} data list(s)")
    return data_lists
