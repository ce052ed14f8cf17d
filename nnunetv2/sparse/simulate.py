"""Turn dense label maps into sparse ones: scribbles, a subset of slices, or a few dense patches.

Every function takes a dense label map ``(z, y, x)`` (2D maps as ``(1, y, x)``) and returns a map of
the same shape where unannotated voxels carry ``ignore_label``. All are seeded and reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

# components smaller than this (in pixels per slice) get no scribble: a person would not draw there
MIN_COMPONENT_PIXELS = 4


def _rasterize_polyline(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mask of the pixels on the straight segments joining consecutive (row, col) points."""
    from skimage.draw import line

    mask = np.zeros(shape, dtype=bool)
    pts = np.clip(np.round(points).astype(int), 0, np.array(shape) - 1)
    if len(pts) == 1:
        mask[pts[0, 0], pts[0, 1]] = True
        return mask
    rows, cols = [], []
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        rr, cc = line(r0, c0, r1, c1)
        rows.append(rr)
        cols.append(cc)
    mask[np.concatenate(rows), np.concatenate(cols)] = True
    return mask


def _interior_scribble(component: np.ndarray, rng: np.random.Generator, num_control_points: int) -> np.ndarray:
    """A smooth curve through random points of the component's core, clipped to the component."""
    from scipy.interpolate import splev, splprep

    core = ndimage.binary_erosion(component, iterations=2)
    if core.sum() < num_control_points:
        core = component
    candidates = np.argwhere(core)
    chosen = candidates[rng.choice(len(candidates), size=min(num_control_points, len(candidates)), replace=False)]
    if len(chosen) >= 2:
        # order the control points along their main direction so the curve does not loop back
        centred = chosen - chosen.mean(0)
        direction = np.linalg.svd(centred.astype(float), full_matrices=False)[2][0]
        chosen = chosen[np.argsort(centred @ direction)]
    unique = np.unique(chosen, axis=0)
    if len(unique) >= 3:
        try:
            with warnings.catch_warnings():
                # FITPACK warns when it stops short of the smoothing target; the curve is fine for a scribble
                warnings.simplefilter("ignore", RuntimeWarning)
                tck, _ = splprep(chosen.T.astype(float), k=min(2, len(chosen) - 1), s=len(chosen))
            curve = np.stack(splev(np.linspace(0, 1, 4 * int(np.ptp(chosen, 0).sum() + 2)), tck), 1)
        except (ValueError, TypeError):  # degenerate point sets (e.g. collinear duplicates)
            curve = chosen.astype(float)
    else:
        curve = chosen.astype(float)
    return _rasterize_polyline(curve, component.shape) & component


# public name for other stroke simulators (scribble_loop.correction_scribbles)
interior_scribble = _interior_scribble


def _border_scribble(
    component: np.ndarray, rng: np.random.Generator, fraction_range: tuple[float, float]
) -> np.ndarray:
    """A stretch of the (slightly eroded) component contour covering a random fraction of it."""
    from skimage.measure import find_contours

    eroded = ndimage.binary_erosion(component, iterations=1)
    source = eroded if eroded.any() else component
    contours = find_contours(np.pad(source, 1).astype(np.uint8), 0.5)
    if not contours:
        return np.zeros_like(component)
    # the image edge is no real boundary: prefer the contour with most points away from it
    upper = np.array(component.shape) - 1
    inner = [(c - 1, ((c - 1 > 0.5) & (c - 1 < upper - 0.5)).all(1)) for c in contours]  # -1 undoes the pad
    contour, away_from_edge = max(inner, key=lambda pair: pair[1].sum())
    if not away_from_edge.any():
        away_from_edge[:] = True
    n = len(contour)
    length = max(2, int(round(n * rng.uniform(*fraction_range))))
    start = rng.choice(np.flatnonzero(away_from_edge))
    stretch = contour[(start + np.arange(length)) % n]
    return _rasterize_polyline(stretch, component.shape) & component


def scribbles_in_slice(
    labels: np.ndarray,
    rng: np.random.Generator,
    classes: Sequence[int],
    thickness: int = 3,
    num_control_points: int = 4,
    border_fraction: tuple[float, float] = (0.07, 0.15),
) -> np.ndarray:
    """Return a bool mask of scribbled pixels in a 2D label map: per connected component of each
    class, one interior and one border scribble, dilated to ``thickness`` inside the component."""
    scribbled = np.zeros(labels.shape, dtype=bool)
    radius = max(0, (thickness - 1) // 2)
    structure = ndimage.generate_binary_structure(2, 1)
    for c in classes:
        components, count = ndimage.label(labels == c)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel())
        for index in np.flatnonzero(sizes >= MIN_COMPONENT_PIXELS):
            if index == 0:
                continue
            component = components == index
            lines = _interior_scribble(component, rng, num_control_points)
            lines |= _border_scribble(component, rng, border_fraction)
            if radius:
                lines = ndimage.binary_dilation(lines, structure, iterations=radius) & component
            scribbled |= lines
    return scribbled


def _slice_indices(n: int, fraction: float, rng: np.random.Generator, evenly_spaced: bool) -> np.ndarray:
    count = max(1, int(round(n * fraction)))
    if evenly_spaced:
        return np.unique(np.round(np.linspace(0, n - 1, count + 2)[1:-1] if count < n else np.arange(n)).astype(int))
    return np.sort(rng.choice(n, size=count, replace=False))


def simulate_scribbles(
    labels: np.ndarray,
    ignore_label: int,
    classes: Sequence[int] | None = None,
    axis: int = 0,
    slice_fraction: float = 1.0,
    thickness: int = 3,
    seed: int = 0,
    **scribble_options,
) -> np.ndarray:
    """Scribble annotation of the slices along ``axis`` (a ``slice_fraction`` of them, random)."""
    rng = np.random.default_rng(seed)
    if classes is None:
        classes = [int(c) for c in np.unique(labels) if c != ignore_label]
    sparse = np.full(labels.shape, ignore_label, dtype=labels.dtype)
    moved = np.moveaxis(labels, axis, 0)
    sparse_moved = np.moveaxis(sparse, axis, 0)  # a view: writes land in ``sparse``
    for index in _slice_indices(moved.shape[0], slice_fraction, rng, evenly_spaced=False):
        mask = scribbles_in_slice(moved[index], rng, classes, thickness, **scribble_options)
        sparse_moved[index][mask] = moved[index][mask]
    return sparse


def simulate_slices(
    labels: np.ndarray,
    ignore_label: int,
    fraction: float = 0.1,
    axes: Sequence[int] = (0,),
    evenly_spaced: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Dense labels on a ``fraction`` of the slices along each of ``axes``; the rest ignored."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(labels.shape, dtype=bool)
    for axis in axes:
        indices = _slice_indices(labels.shape[axis], fraction, rng, evenly_spaced)
        selector: list[slice | np.ndarray] = [slice(None)] * labels.ndim
        selector[axis] = indices
        keep[tuple(selector)] = True
    return np.where(keep, labels, ignore_label).astype(labels.dtype)


def simulate_patches(
    labels: np.ndarray, ignore_label: int, num_patches: int = 3, patch_size: int = 32, seed: int = 0
) -> np.ndarray:
    """Dense labels inside ``num_patches`` random cubes (squares in 2D) of edge ``patch_size``."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(labels.shape, dtype=bool)
    edges = [min(patch_size, s) if s > 1 else 1 for s in labels.shape]
    for _ in range(num_patches):
        starts = [rng.integers(0, s - e + 1) for s, e in zip(labels.shape, edges)]
        keep[tuple(slice(st, st + e) for st, e in zip(starts, edges))] = True
    return np.where(keep, labels, ignore_label).astype(labels.dtype)


def annotated_fraction_per_class(dense: np.ndarray, sparse: np.ndarray, ignore_label: int) -> dict[int, float]:
    """Return, per class of ``dense``, the fraction of its voxels still annotated in ``sparse``."""
    classes = [int(c) for c in np.unique(dense) if c != ignore_label]
    total = np.bincount(dense.ravel().astype(np.int64), minlength=max(classes) + 1)
    kept = np.bincount(dense[sparse != ignore_label].ravel().astype(np.int64), minlength=max(classes) + 1)
    return {c: float(kept[c] / total[c]) for c in classes if total[c] > 0}
