"""Render one slice as an RGB picture: the image in grey, labels blended in colour, and on request an
uncertainty heat map (a second panel on the right), scribbles and worklist boxes.

Colours: label v > 0 gets matplotlib's ``tab10`` colour number (v - 1) mod 9 (tab10 without its
grey, which would vanish on a grey image); a label pixel is ``(1 - a) * grey + a * colour`` with
``a`` the overlay intensity. Scribbles are painted opaque in their class colour (background
scribbles white); worklist boxes are cyan outlines around the box; the heat map is matplotlib's
``inferno`` blended with weight ``a * u`` (u the uncertainty clipped to [0, 1]), so certain voxels
show the plain image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOX_COLOUR = (0, 255, 255)
BACKGROUND_SCRIBBLE_COLOUR = (1.0, 1.0, 1.0)
HEAT_MAP = "inferno"
_TAB10_GREY = 7


def label_palette(max_label: int) -> np.ndarray:
    """Return ``(max_label + 1, 3)`` float RGB in [0, 1]: row v is label v's colour (row 0 unused, black)."""
    from matplotlib import colormaps

    tab10 = colormaps["tab10"].colors  # type: ignore[attr-defined]  # a ListedColormap
    colours = np.array([c for i, c in enumerate(tab10) if i != _TAB10_GREY])
    palette = np.zeros((max_label + 1, 3))
    if max_label >= 1:
        palette[1:] = colours[np.arange(max_label) % len(colours)]
    return palette


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


def blend_heat_map(rgb: np.ndarray, values: np.ndarray, intensity: float) -> np.ndarray:
    """Return ``rgb`` with ``values`` (clipped to [0, 1]) blended as a heat map, weight intensity x value."""
    from matplotlib import colormaps

    values = np.clip(np.nan_to_num(values.astype(np.float64)), 0.0, 1.0)
    heat = colormaps[HEAT_MAP](values)[..., :3]
    weight = (intensity * values)[..., None]
    return (1.0 - weight) * rgb + weight * heat


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


def output_size(shape: tuple[int, int], pixel_spacing: Sequence[float] | None, scale: int) -> tuple[int, int]:
    """Return the rendered (height, width) of a ``shape`` slice: ``scale`` pixels per voxel along the finer axis,
    the coarser axis stretched by the spacing ratio so pixels are square in physical space."""
    aspect = np.ones(2) if pixel_spacing is None else np.asarray(pixel_spacing, dtype=float) / min(pixel_spacing)
    height, width = (max(1, int(round(n * scale * a))) for n, a in zip(shape, aspect))
    return height, width


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


def render_slice(
    image: np.ndarray,
    window: tuple[float, float],
    labels: np.ndarray | None = None,
    *,
    overlay_intensity: float = 0.6,
    hidden_labels: Sequence[int] = (),
    uncertainty: np.ndarray | None = None,
    scribbles: np.ndarray | None = None,
    unannotated: int | None = None,
    boxes: Sequence[tuple[int, int, int, int]] = (),
    pixel_spacing: Sequence[float] | None = None,
    scale: int = 1,
) -> np.ndarray:
    """Return the uint8 RGB picture of one 2D slice: the overlay panel, and a heat-map panel on its right when
    ``uncertainty`` is given; boxes are drawn on both panels. Size: see output_size (width doubles with a heat map)."""
    base = grey_rgb(image, window)
    panel = base if labels is None else blend_labels(base, labels, overlay_intensity, hidden_labels)
    if scribbles is not None and unannotated is not None:
        panel = paint_scribbles(panel, scribbles, unannotated)
    panels = [panel]
    if uncertainty is not None:
        panels.append(blend_heat_map(base, uncertainty, overlay_intensity))
    size = output_size(image.shape, pixel_spacing, scale)
    thickness = max(1, scale // 2)
    pictures = [draw_boxes(resize_nearest(to_uint8(p), size), boxes, image.shape, thickness) for p in panels]
    return np.concatenate(pictures, axis=1)
