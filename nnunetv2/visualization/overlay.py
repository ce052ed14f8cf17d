"""Render one slice as RGB panels: the image in grey with labels blended in colour, and on request a reference
panel, an uncertainty heat-map panel, scribbles and worklist boxes.

Colours stay apart for colour-blind viewers: label v > 0 gets Okabe and Ito's colour number
(v - 1) mod 7 (their palette without black); a label pixel is ``(1 - a) * grey + a * colour`` with
``a`` the overlay intensity. Scribbles are painted opaque in their class colour (background
scribbles white); worklist boxes are cyan outlines. The heat map has a panel of its own: the image
dimmed to at most 45 % grey (a bright organ cannot pass for a hot spot), and ``viridis`` (perceptually
uniform, readable with every common colour-vision deficiency) laid over it with an opacity that
rises with the value, 0 at 0 and full from ``HEAT_FULL_OPACITY`` of the range on, so an uncertainty
of 0 never tints the anatomy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BOX_COLOUR = (0, 255, 255)
BACKGROUND_SCRIBBLE_COLOUR = (1.0, 1.0, 1.0)
HEAT_MAP = "viridis"
HEAT_FULL_OPACITY = 0.25  # fraction of the range from which the heat colour is opaque
HEAT_BACKGROUND_DIMMING = 0.45  # the heat panel's image is at most this grey
# Okabe & Ito (2008), "Color Universal Design": orange, sky blue, bluish green, yellow, blue, vermilion,
# reddish purple (their black is left out: it would vanish on a dark image)
OKABE_ITO = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
)


def label_palette(max_label: int) -> np.ndarray:
    """Return ``(max_label + 1, 3)`` float RGB in [0, 1]: row v is label v's colour (row 0 unused, black)."""
    colours = np.array(OKABE_ITO, dtype=float) / 255
    palette = np.zeros((max_label + 1, 3))
    if max_label >= 1:
        palette[1:] = colours[np.arange(max_label) % len(colours)]
    return palette


def heat_colours(values: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Return the heat map's float RGB colours of ``values`` (clipped to ``value_range``)."""
    from matplotlib import colormaps

    low, high = value_range
    fraction = np.clip((np.nan_to_num(np.asarray(values, dtype=np.float64)) - low) / (high - low), 0.0, 1.0)
    return colormaps[HEAT_MAP](fraction)[..., :3]


def display_window(image: np.ndarray) -> tuple[float, float]:
    """Return the (low, high) grey window: the 0.5 and 99.5 percentiles of the image (its min/max if equal)."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [0.5, 99.5])
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return float(low), float(high) if high > low else float(low) + 1.0


def grey_rgb(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Return the 2D image as float RGB ``(h, w, 3)`` in [0, 1], windowed."""
    low, high = window
    grey = np.clip((np.nan_to_num(image.astype(np.float64)) - low) / (high - low), 0.0, 1.0)
    return np.repeat(grey[..., None], 3, axis=2)


def blend_labels(rgb: np.ndarray, labels: np.ndarray, intensity: float, hidden: Sequence[int] = ()) -> np.ndarray:
    """Return ``rgb`` with every label > 0 (except ``hidden`` ones, e.g. the ignore label) blended in its colour."""
    labels = labels.astype(np.int64)
    shown = (labels > 0) & ~np.isin(labels, list(hidden))
    palette = label_palette(int(labels.max()) if labels.size else 0)
    coloured = (1.0 - intensity) * rgb + intensity * palette[np.where(shown, labels, 0)]
    return np.where(shown[..., None], coloured, rgb)


def heat_map_panel(rgb: np.ndarray, values: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Return the heat-map panel: ``rgb`` dimmed, with the heat colours laid over it at an opacity rising from 0
    (value at the range's low end) to 1 (``HEAT_FULL_OPACITY`` of the range and above)."""
    low, high = value_range
    fraction = np.clip((np.nan_to_num(values.astype(np.float64)) - low) / (high - low), 0.0, 1.0)
    opacity = np.clip(fraction / HEAT_FULL_OPACITY, 0.0, 1.0)[..., None]
    return (1.0 - opacity) * (HEAT_BACKGROUND_DIMMING * rgb) + opacity * heat_colours(values, value_range)


def paint_scribbles(rgb: np.ndarray, scribbles: np.ndarray, unannotated: int) -> np.ndarray:
    """Return ``rgb`` with scribbled pixels (value != ``unannotated``) opaque in their class colour."""
    scribbles = scribbles.astype(np.int64)
    drawn = scribbles != unannotated
    palette = label_palette(max(int(scribbles[drawn].max()) if drawn.any() else 0, 1))
    palette[0] = BACKGROUND_SCRIBBLE_COLOUR
    return np.where(drawn[..., None], palette[np.where(drawn, scribbles, 0)], rgb)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Return float RGB in [0, 1] as uint8 (rounded)."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def output_size(shape: tuple[int, int], pixel_spacing: Sequence[float] | None, scale: int | None) -> tuple[int, int]:
    """Return the rendered (height, width) of a ``shape`` slice: ``scale`` pixels per voxel along the finer axis,
    the coarser axis stretched by the spacing ratio so pixels are square in physical space; ``scale`` None
    picks the smallest whole scale that gives at least ``MIN_SHORT_SIDE`` pixels on the short side."""
    aspect = np.ones(2) if pixel_spacing is None else np.asarray(pixel_spacing, dtype=float) / min(pixel_spacing)
    if scale is None:
        scale = auto_scale(shape, pixel_spacing)
    height, width = (max(1, int(round(n * scale * a))) for n, a in zip(shape, aspect))
    return height, width


MIN_SHORT_SIDE = 256  # pixels: the default panel size, readable without zooming


def auto_scale(shape: tuple[int, int], pixel_spacing: Sequence[float] | None = None) -> int:
    """Return the smallest whole number of pixels per voxel that makes the panel's short side ``MIN_SHORT_SIDE``."""
    short = min(output_size(shape, pixel_spacing, 1))
    return max(1, int(np.ceil(MIN_SHORT_SIDE / short)))


def resize_nearest(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return the uint8 RGB ``picture`` resized to (height, width) by nearest neighbour (no new colours)."""
    if picture.shape[:2] == tuple(size):
        return picture
    from PIL import Image

    return np.asarray(Image.fromarray(picture).resize((size[1], size[0]), Image.Resampling.NEAREST))


def draw_boxes(
    picture: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    slice_shape: tuple[int, int],
    thickness: int = 1,
    colour: tuple[int, int, int] = BOX_COLOUR,
) -> np.ndarray:
    """Return ``picture`` with an outline around each box ``(row_start, row_stop, col_start, col_stop)`` (voxel
    coordinates of a ``slice_shape`` slice), just outside the box, or on its edge where the image ends."""
    out = picture.copy()
    height, width = out.shape[:2]
    fy, fx = height / slice_shape[0], width / slice_shape[1]
    for r0, r1, c0, c1 in boxes:
        top, bottom = int(np.floor(r0 * fy)), int(np.floor(r1 * fy))
        left, right = int(np.floor(c0 * fx)), int(np.floor(c1 * fx))
        rows = _band(top, bottom, thickness, height)
        cols = _band(left, right, thickness, width)
        for r in (slice(rows[0], rows[0] + thickness), slice(rows[1] - thickness, rows[1])):
            out[r, cols[0] : cols[1]] = colour
        for c in (slice(cols[0], cols[0] + thickness), slice(cols[1] - thickness, cols[1])):
            out[rows[0] : rows[1], c] = colour
    return out


def _band(start: int, stop: int, thickness: int, limit: int) -> tuple[int, int]:
    """The outline's outer extent along one axis: ``thickness`` beyond the box, clipped to the picture."""
    return max(0, start - thickness), min(limit, max(stop, start + 1) + thickness)


@dataclass(frozen=True)
class Panel:
    """One picture of a slice with its title."""

    title: str
    picture: np.ndarray  # uint8 RGB


def render_panels(
    image: np.ndarray,
    window: tuple[float, float],
    labels: np.ndarray | None = None,
    *,
    overlay_intensity: float = 0.6,
    hidden_labels: Sequence[int] = (),
    reference: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    uncertainty_range: tuple[float, float] = (0.0, 1.0),
    scribbles: np.ndarray | None = None,
    unannotated: int | None = None,
    boxes: Sequence[tuple[int, int, int, int]] = (),
    pixel_spacing: Sequence[float] | None = None,
    scale: int | None = None,
    titles: Mapping[str, str] | None = None,
) -> list[Panel]:
    """Return the panels of one 2D slice, left to right: reference (when given), the labels (with scribbles),
    the heat map (when ``uncertainty`` is given); all upscaled by nearest neighbour to output_size, boxes on each.
    ``titles`` renames the panels ``reference``, ``labels`` and ``uncertainty``."""
    titles = {"reference": "reference", "labels": "labels", "uncertainty": "uncertainty", **(titles or {})}
    base = grey_rgb(image, window)
    pictures = []
    if reference is not None:
        pictures.append((titles["reference"], blend_labels(base, reference, overlay_intensity, hidden_labels)))
    panel = base if labels is None else blend_labels(base, labels, overlay_intensity, hidden_labels)
    title = titles["labels"] if labels is not None else "image"
    if scribbles is not None and unannotated is not None:
        panel = paint_scribbles(panel, scribbles, unannotated)
        title += " + scribbles"
    pictures.append((title, panel))
    if uncertainty is not None:
        pictures.append((titles["uncertainty"], heat_map_panel(base, uncertainty, uncertainty_range)))
    size = output_size(image.shape, pixel_spacing, scale)
    thickness = max(1, min(size[0] // image.shape[0], size[1] // image.shape[1]) // 2)
    return [
        Panel(name, draw_boxes(resize_nearest(to_uint8(p), size), boxes, image.shape, thickness))
        for name, p in pictures
    ]


def render_slice(
    image: np.ndarray, window: tuple[float, float], labels: np.ndarray | None = None, **kwargs
) -> np.ndarray:
    """Return render_panels' pictures side by side, without titles (one uint8 RGB array)."""
    return np.concatenate([p.picture for p in render_panels(image, window, labels, **kwargs)], axis=1)
