"""Lay out a slice's panels as one picture a reader can interpret on its own.

From the top: a header line (case, slice, the slice's physical position), the panel titles, the
panels side by side, a colour bar under the heat-map panel (the measure's name and its range), and a
legend (label colours with their names, scribble colours, the worklist box). Worklist boxes carry
their rank in a tag at their top-left corner, so two boxes in one slice can be told apart. Text is
light on a dark background, as in a viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from nnunetv2.visualization.overlay import BOX_COLOUR, Panel, heat_colours

BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
MARGIN = 8  # pixels around and between the parts
FONT_SIZE = 14
COLOUR_BAR_HEIGHT = 12


@dataclass(frozen=True)
class LegendItem:
    """A colour and what it means; ``outline`` draws it as a box outline (the worklist box)."""

    text: str
    colour: tuple[int, int, int]
    outline: bool = False


@dataclass(frozen=True)
class ColourBar:
    """The heat map's scale: what it measures and the range its colours span."""

    name: str
    value_range: tuple[float, float] = (0.0, 1.0)


@cache
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _text_size(text: str, size: int = FONT_SIZE) -> tuple[int, int]:
    """(width, height) of ``text`` in pixels."""
    left, top, right, bottom = _font(size).getbbox(text)
    return int(right - left), int(bottom - top)


def label_boxes(
    picture: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    ranks: Sequence[int],
    slice_shape: tuple[int, int],
) -> np.ndarray:
    """Return ``picture`` with a ``#rank`` tag at the top-left corner of each box (voxel ``(r0, r1, c0, c1)`` of a
    ``slice_shape`` slice): above the box where there is room, else inside it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    height, width = picture.shape[:2]
    fy, fx = height / slice_shape[0], width / slice_shape[1]
    size = max(10, FONT_SIZE - 2)
    for (r0, _, c0, _), rank in zip(boxes, ranks):
        text = f"#{rank}"
        text_width, text_height = _text_size(text, size)
        top, left = int(np.floor(r0 * fy)), int(np.floor(c0 * fx))
        y = top - text_height - 5 if top - text_height - 5 >= 0 else top + 2
        x = min(max(0, left), max(0, width - text_width - 4))
        draw.rectangle((x, y, x + text_width + 3, y + text_height + 3), fill=(0, 0, 0))
        draw.text((x + 2, y + 1), text, fill=BOX_COLOUR, font=_font(size), anchor="lt")
    return np.asarray(image)


def compose_figure(
    panels: Sequence[Panel],
    header: str,
    legend: Sequence[LegendItem] = (),
    colour_bar: ColourBar | None = None,
    colour_bar_panel: int = -1,
    notes: Sequence[str] = (),
) -> np.ndarray:
    """Return the uint8 RGB figure: header, titled panels, the colour bar under panel ``colour_bar_panel``, the
    legend and ``notes`` (one line each, e.g. the worklist entries' viewer coordinates)."""
    from PIL import Image, ImageDraw

    line = _text_size("Ag")[1] + 6
    panel_height = max(p.picture.shape[0] for p in panels)
    panels_width = sum(p.picture.shape[1] for p in panels) + MARGIN * (len(panels) - 1)
    width = max(panels_width, _text_size(header)[0], *(_text_size(n)[0] for n in notes)) + 2 * MARGIN
    legend_rows = _legend_rows(legend, width - 2 * MARGIN)
    bar_height = 0
    if colour_bar is not None:
        bar_width = panels[colour_bar_panel].picture.shape[1]
        bar_height = COLOUR_BAR_HEIGHT + 4 + line * (1 + int(not _name_fits(colour_bar, bar_width)))
    rows = len(legend_rows) + len(notes)
    height = MARGIN + line + line + panel_height + bar_height + rows * line + 2 * MARGIN
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font(FONT_SIZE)
    draw.text((MARGIN, MARGIN), header, fill=TEXT, font=font, anchor="lt")
    top = MARGIN + 2 * line
    x = MARGIN
    for number, panel in enumerate(panels):
        panel_width = panel.picture.shape[1]
        title_width = _text_size(panel.title)[0]
        draw.text((x + max(0, (panel_width - title_width) // 2), top - line + 2), panel.title, fill=TEXT, font=font)
        canvas.paste(Image.fromarray(panel.picture), (x, top))
        if colour_bar is not None and number == range(len(panels))[colour_bar_panel]:
            _draw_colour_bar(canvas, draw, colour_bar, x, top + panel_height + 4, panel_width, line)
        x += panel_width + MARGIN
    y = top + panel_height + bar_height + MARGIN
    for row in legend_rows:
        _draw_legend_row(draw, row, MARGIN, y, line)
        y += line
    for note in notes:
        draw.text((MARGIN, y + 1), note, fill=TEXT, font=font)
        y += line
    return np.asarray(canvas)


def _name_fits(bar: ColourBar, width: int) -> bool:
    """Whether the measure's name fits between the range's two ends under a bar ``width`` pixels wide."""
    low, high = (_text_size(_format(v))[0] for v in bar.value_range)
    return _text_size(bar.name)[0] <= width - low - high - 16


def _draw_colour_bar(canvas, draw, bar: ColourBar, x: int, y: int, width: int, line: int) -> None:
    """The gradient over ``width`` pixels, the range's ends under its ends and the measure's name between them."""
    from PIL import Image

    low, high = bar.value_range
    gradient = heat_colours(np.linspace(low, high, width), bar.value_range)
    strip = np.round(np.repeat(gradient[None], COLOUR_BAR_HEIGHT, axis=0) * 255).astype(np.uint8)
    canvas.paste(Image.fromarray(strip), (x, y))
    font = _font(FONT_SIZE)
    below = y + COLOUR_BAR_HEIGHT + 3
    low_text, high_text = _format(low), _format(high)
    draw.text((x, below), low_text, fill=TEXT, font=font)
    draw.text((x + width - _text_size(high_text)[0], below), high_text, fill=TEXT, font=font)
    name_width = _text_size(bar.name)[0]
    # the name goes between the two numbers when it fits there, else on the line below
    name_y = below if _name_fits(bar, width) else below + line
    draw.text((x + max(0, (width - name_width) // 2), name_y), bar.name, fill=TEXT, font=font)


def _format(value: float) -> str:
    return f"{value:g}"


def _legend_rows(items: Sequence[LegendItem], width: int) -> list[list[LegendItem]]:
    """The legend's items wrapped into rows no wider than ``width``."""
    rows: list[list[LegendItem]] = []
    used = width
    for item in items:
        item_width = _legend_item_width(item)
        if used + item_width > width and (not rows or rows[-1]):
            rows.append([])
            used = 0
        rows[-1].append(item)
        used += item_width
    return rows


def _legend_item_width(item: LegendItem) -> int:
    return FONT_SIZE + 6 + _text_size(item.text)[0] + 16


def _draw_legend_row(draw, items: Sequence[LegendItem], x: int, y: int, line: int) -> None:
    font = _font(FONT_SIZE)
    for item in items:
        box = (x, y + 2, x + FONT_SIZE - 2, y + FONT_SIZE)
        if item.outline:
            draw.rectangle(box, outline=item.colour, width=2)
        else:
            draw.rectangle(box, fill=item.colour, outline=(0, 0, 0))
        draw.text((x + FONT_SIZE + 4, y + 1), item.text, fill=TEXT, font=font)
        x += _legend_item_width(item)
