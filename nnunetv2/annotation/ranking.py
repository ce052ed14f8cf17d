"""Rank uncertain regions by the benefit a scribble there is expected to bring, and pick a worklist.

A region is a connected set (8-connected within a slice, never across slices) of voxels whose
uncertainty is at least ``threshold``, in one slice perpendicular to ``axis``: the unit a person
annotates. Regions under ``min_region_size`` voxels are dropped. A candidate (one worklist entry) is
a *stroke window* of a region: a box of ``2 x window_radius + 1`` voxels per in-plane axis, centred
on the region's most uncertain voxel, then the next one on the rest of the region, and so on (every
region keeps its first window; later ones need ``min_region_size`` voxels, or more than half of a
window too small for that). The
window matches the reach of the pseudo-label rule: a stroke grows about 2 voxels (the geodesic
distance at which the default rule's geodesic term falls to 0.5, ln(1 + 10 ln 2) = 2.07), so a
short stroke at the most uncertain spot of a region relabels about as much as a long stroke
through all of it, for a fraction of the voxels. ``window_radius=0`` makes every region one
candidate. Its benefit is

    uncertainty mass (sum of the uncertainty over the candidate's voxels)
    x novelty(distance to the nearest existing scribble)
    x novelty(distance to each candidate already picked in the same case),   novelty(d) = 1 - exp(-d / s)

with distances between candidate centroids (or from the candidate to the nearest scribble voxel) in
voxels of the finest axis and ``s = distance_scale``; candidates of a case closer than
``exclusion_radius`` to a picked one are dropped. Both stand for the fact that the geodesic
pseudo-label rule spreads a scribble over its neighbourhood, and far along a structure the
network is undecided about: a candidate next to an existing scribble, or to a picked one in the
same region or the adjacent slice, gains little from another stroke. Candidates are picked
greedily (largest current benefit first) until the budget is spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from nnunetv2.annotation.worklist import WorklistEntry
from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.parameters import check_number, check_numbers

# 3 x 3 windows: a short stroke, and the growth of the default pseudo-label rule (geodesic term 0.5 at
# ln(1 + 10 ln 2) = 2.07 voxels) does the rest; chosen on a development pool against 2 (5 x 5), see
# documentation/annotation_and_review.md
DEFAULT_WINDOW_RADIUS = 1
# candidates nearer than this to a picked one in the same case gain little: the picked stroke's growth
# reaches them (same development pool; 10 with 5 x 5 windows)
DEFAULT_EXCLUSION_RADIUS = 6.0
# in-plane 8-connectivity, nothing across slices: regions are what a person sees on one slice
_IN_SLICE = np.zeros((3, 3, 3), dtype=bool)
_IN_SLICE[1] = True


@dataclass(frozen=True)
class UncertainRegion:
    """A connected region of uncertain voxels in one slice; coordinates in (z, y, x) array order."""

    axis: int
    slice: int
    bbox: tuple[tuple[int, int], ...]  # [start, stop) per axis
    size: int
    mass: float  # sum of the uncertainty over the region
    centroid: tuple[float, ...]  # in voxels of the finest axis (spacing-scaled)
    distance_to_scribbles: float | None  # voxels of the finest axis; None when the case has no scribbles
    predicted_label: int | None


def find_uncertain_regions(
    uncertainty: np.ndarray,
    axis: int = 0,
    threshold: float = 0.5,
    min_region_size: int = 10,
    spacing: Sequence[float] | None = None,
    scribbled: np.ndarray | None = None,
    prediction: np.ndarray | None = None,
    window_radius: float = DEFAULT_WINDOW_RADIUS,
) -> list[UncertainRegion]:
    """Return the candidates of one case (largest uncertainty mass first): stroke windows of its uncertain regions.

    uncertainty: ``(z, y, x)`` (2D images: ``(1, y, x)`` or ``(y, x)``), higher = less certain;
    spacing: per array axis (default 1); scribbled: bool map of existing scribbles;
    prediction: label map, to report each candidate's most frequent predicted label;
    window_radius: half the side of a stroke window in voxels of the finest axis (0: whole regions).
    """
    u = _as_volume(np.asarray(uncertainty), "uncertainty")
    _check_region_arguments(u, axis, threshold, min_region_size)
    check_number("window_radius", window_radius, ">= 0", where="uncertain regions")
    if not np.issubdtype(u.dtype, np.floating) and not np.issubdtype(u.dtype, np.integer):
        raise NnUNetError(f"uncertainty map: expected numbers, got {u.dtype}")
    if not np.isfinite(u).all():
        raise NnUNetError("uncertainty map: contains NaN or infinite values")
    u = u.astype(np.float64, copy=False)
    labels = np.moveaxis(ndimage.label(np.moveaxis(u >= threshold, axis, 0), _IN_SLICE)[0], 0, axis)
    sizes = np.bincount(labels.ravel())[1:]
    kept = np.flatnonzero(sizes >= min_region_size) + 1  # label values of the regions that count
    if len(kept) == 0:
        return []
    units = _voxel_units(spacing, u.shape)
    if window_radius > 0:
        half_sizes = [0 if a == axis else int(window_radius / units[a]) for a in range(3)]
        labels, sizes, kept = _stroke_windows(u, labels, kept, half_sizes, min_region_size)
    masses = ndimage.sum_labels(u, labels, kept)
    boxes = ndimage.find_objects(labels)
    centroids = np.asarray(ndimage.center_of_mass(np.ones_like(labels, dtype=np.uint8), labels, kept)) * units
    distances = _distances_to_scribbles(scribbled, u.shape, units, labels, kept)
    predicted = _majority_labels(prediction, u.shape, labels, kept)
    regions = [
        UncertainRegion(
            axis=axis,
            slice=int(boxes[v - 1][axis].start),
            bbox=tuple((int(s.start), int(s.stop)) for s in boxes[v - 1]),
            size=int(sizes[v - 1]),
            mass=float(masses[i]),
            centroid=tuple(map(float, centroids[i])),
            distance_to_scribbles=None if distances is None else float(distances[i]),
            predicted_label=None if predicted is None else int(predicted[i]),
        )
        for i, v in enumerate(kept)
    ]
    return sorted(regions, key=lambda r: -r.mass)


def _stroke_windows(
    u: np.ndarray, labels: np.ndarray, kept: np.ndarray, half_sizes: list[int], min_region_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every kept region into stroke windows; return (window label map, sizes, kept window labels).

    Windows are placed one at a time, centred on the most uncertain voxel the region has left: where
    the network is most undecided, a stroke's geodesic term flips the most voxels. The first window of
    a region is always kept, later ones when they hold at least ``min_region_size`` voxels or, for
    windows too small for that, more than half their voxels.
    """
    windows = np.zeros(labels.shape, dtype=np.int64)
    window_shape = [2 * h + 1 for h in half_sizes]
    # a later window counts when it is half full; small windows (radius 1: 9 voxels) could never hold
    # min_region_size voxels and would leave one window per region
    min_window_size = min(min_region_size, int(np.prod(window_shape)) // 2 + 1)
    boxes = ndimage.find_objects(labels)
    count, new_kept = 0, []
    for value in kept:
        box = boxes[value - 1]
        remaining = labels[box] == value
        local_u = u[box]
        first = True
        while remaining.any():
            # ties (plateaus of equal uncertainty) go to the voxel whose window holds the most of what is left
            window_mass = ndimage.uniform_filter(np.where(remaining, local_u, 0.0), window_shape, mode="constant")
            priority = np.where(remaining, local_u + 1e-6 * window_mass, -np.inf)
            centre = np.unravel_index(int(np.argmax(priority)), remaining.shape)
            window = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(centre, half_sizes))
            piece = np.zeros_like(remaining)
            piece[window] = remaining[window]
            remaining[window] = False
            if first or np.count_nonzero(piece) >= min_window_size:
                count += 1
                windows[box][piece] = count
                new_kept.append(count)
            first = False
    sizes = np.bincount(windows.ravel(), minlength=count + 1)[1:]
    return windows, sizes, np.asarray(new_kept, dtype=np.int64)


def novelty(distance: np.ndarray | float, distance_scale: float) -> np.ndarray | float:
    """Return 1 - exp(-distance / distance_scale): 0 on top of a scribble, towards 1 far from it (1 if scale 0)."""
    if distance_scale == 0:
        return np.ones_like(distance, dtype=float) if isinstance(distance, np.ndarray) else 1.0
    return -np.expm1(-np.asarray(distance, dtype=float) / distance_scale)


def build_worklist(
    regions_per_case: Mapping[str, Sequence[UncertainRegion]],
    budget: int,
    distance_scale: float = 5.0,
    max_per_case: int | None = None,
    exclusion_radius: float = DEFAULT_EXCLUSION_RADIUS,
) -> tuple[list[WorklistEntry], dict[str, dict]]:
    """Pick at most ``budget`` candidates over all cases by benefit; return (entries, per-case summary).

    Entries are ordered for a person: cases by the benefit picked in them, within a case slices by
    the benefit picked in them, within a slice regions by benefit. ``max_per_case`` caps the
    entries of one case; candidates of a case whose centroid lies closer than ``exclusion_radius``
    to one picked before are dropped.
    """
    _check_selection_arguments(budget, distance_scale, max_per_case, exclusion_radius)
    cases = sorted(regions_per_case)
    flat = [(case_index, region) for case_index, case in enumerate(cases) for region in regions_per_case[case]]
    case_of = np.array([c for c, _ in flat], dtype=np.int64)
    base = np.array(
        [
            r.mass * (1.0 if r.distance_to_scribbles is None else novelty(r.distance_to_scribbles, distance_scale))
            for _, r in flat
        ]
    )
    centroids = np.array([r.centroid for _, r in flat], dtype=float).reshape(len(flat), 3)
    current = base.copy()
    picked: list[tuple[int, float]] = []
    picked_per_case = np.zeros(len(cases), dtype=np.int64)
    while len(picked) < budget and len(flat):
        best = int(np.argmax(current))
        if current[best] <= 0:
            break
        picked.append((best, float(current[best])))
        same_case = np.flatnonzero(case_of == case_of[best])
        distance = np.linalg.norm(centroids[same_case] - centroids[best], axis=1)
        # the picked region's own distance is 0, so its benefit drops to 0 and it is never picked again
        current[same_case] *= novelty(distance, distance_scale)
        current[same_case[distance < exclusion_radius]] = 0.0  # what the picked stroke's growth already reaches
        current[best] = 0.0
        picked_per_case[case_of[best]] += 1
        if max_per_case is not None and picked_per_case[case_of[best]] >= max_per_case:
            current[same_case] = 0.0
    return _ordered_entries(cases, flat, picked, base, case_of)


def _ordered_entries(
    cases: list[str], flat: list, picked: list[tuple[int, float]], base: np.ndarray, case_of: np.ndarray
) -> tuple[list[WorklistEntry], dict[str, dict]]:
    """Turn the picked (candidate index, benefit) pairs into ranked entries and the per-case summary."""
    picked_benefit = np.zeros(len(cases))
    slice_benefit: dict[tuple[int, int, int], float] = {}
    for index, score in picked:
        case_index, region = flat[index]
        picked_benefit[case_index] += score
        key = (case_index, region.axis, region.slice)
        slice_benefit[key] = slice_benefit.get(key, 0.0) + score
    candidate_benefit = np.bincount(case_of, weights=base, minlength=len(cases)) if len(flat) else np.zeros(len(cases))
    case_order = sorted(range(len(cases)), key=lambda c: (-picked_benefit[c], -candidate_benefit[c], cases[c]))
    case_rank = {c: rank for rank, c in enumerate(case_order, start=1)}
    slice_rank: dict[tuple[int, int, int], int] = {}
    for case_index in range(len(cases)):
        keys = sorted((k for k in slice_benefit if k[0] == case_index), key=lambda k: (-slice_benefit[k], k))
        slice_rank.update({k: rank for rank, k in enumerate(keys, start=1)})

    def sort_key(item: tuple[int, float]) -> tuple:
        case_index, region = flat[item[0]]
        return case_rank[case_index], slice_rank[(case_index, region.axis, region.slice)], -item[1], region.bbox

    entries = []
    for rank, (index, score) in enumerate(sorted(picked, key=sort_key), start=1):
        case_index, r = flat[index]
        entries.append(
            WorklistEntry(
                rank=rank,
                case=cases[case_index],
                case_rank=case_rank[case_index],
                axis=r.axis,
                slice=r.slice,
                slice_rank=slice_rank[(case_index, r.axis, r.slice)],
                bbox=r.bbox,
                score=score,
                uncertainty_mass=r.mass,
                size=r.size,
                mean_uncertainty=r.mass / r.size,
                distance_to_scribbles=r.distance_to_scribbles,
                predicted_label=r.predicted_label,
            )
        )
    summary = {
        cases[c]: {
            "case_rank": case_rank[c],
            "benefit": float(picked_benefit[c]),
            "candidate_benefit": float(candidate_benefit[c]),
            "candidate_regions": int(np.count_nonzero(case_of == c)),
            "worklist_regions": sum(1 for e in entries if e.case == cases[c]),
        }
        for c in case_order
    }
    return entries, summary


def _as_volume(array: np.ndarray, name: str) -> np.ndarray:
    """A 2D map as ``(1, y, x)``; 3D maps unchanged."""
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise NnUNetError(f"{name}: expected a 2D or 3D map, got shape {list(array.shape)}")
    return array


def _check_region_arguments(u: np.ndarray, axis, threshold, min_region_size) -> None:
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise NnUNetError(f"uncertain regions: axis must be 0, 1 or 2, got {axis!r}")
    if u.shape[0] == 1 and axis != 0:
        raise NnUNetError(f"uncertain regions: a 2D image has only slices along axis 0, got axis {axis}")
    check_numbers(
        {"threshold": "number", "min_region_size": "integer >= 1"},
        {"threshold": threshold, "min_region_size": min_region_size},
        where="uncertain regions",
    )


def _check_selection_arguments(budget, distance_scale, max_per_case, exclusion_radius) -> None:
    check_number("budget", budget, "integer >= 0", where="worklist")
    check_numbers(
        {"distance_scale": ">= 0", "exclusion_radius": ">= 0"},
        {"distance_scale": distance_scale, "exclusion_radius": exclusion_radius},
        where="worklist",
    )
    check_number("max_per_case", max_per_case, "integer >= 1", where="worklist", optional=True)


def _voxel_units(spacing: Sequence[float] | None, shape: tuple[int, ...]) -> np.ndarray:
    """Spacing divided by the finest spacing of the axes longer than one voxel (a 2D image's 999 is ignored)."""
    if spacing is None:
        return np.ones(len(shape))
    values = np.asarray(spacing, dtype=float)
    if values.shape != (len(shape),) or not np.all(np.isfinite(values) & (values > 0)):
        raise NnUNetError(f"uncertain regions: spacing {values.tolist()} must be {len(shape)} positive numbers")
    long_axes = np.array(shape) > 1
    finest = values[long_axes].min() if long_axes.any() else 1.0
    return np.asarray(values / finest)


def _distances_to_scribbles(
    scribbled: np.ndarray | None, shape: tuple[int, ...], units: np.ndarray, labels: np.ndarray, kept: np.ndarray
) -> np.ndarray | None:
    """Per region, the distance from its nearest voxel to the nearest scribbled voxel; None without scribbles."""
    if scribbled is None:
        return None
    scribbled = _as_volume(np.asarray(scribbled, dtype=bool), "scribbles")
    if scribbled.shape != shape:
        raise NnUNetError(
            f"uncertain regions: scribbles of shape {list(scribbled.shape)} do not match the "
            f"uncertainty map's {list(shape)}"
        )
    if not scribbled.any():
        return None
    distance = ndimage.distance_transform_edt(~scribbled, sampling=units)
    return np.asarray(ndimage.minimum(distance, labels, kept), dtype=float)


def _majority_labels(
    prediction: np.ndarray | None, shape: tuple[int, ...], labels: np.ndarray, kept: np.ndarray
) -> np.ndarray | None:
    """Per region, the most frequent predicted label; None without a prediction."""
    if prediction is None:
        return None
    prediction = _as_volume(np.asarray(prediction), "prediction")
    if prediction.shape != shape:
        raise NnUNetError(
            f"uncertain regions: prediction of shape {list(prediction.shape)} does not match the "
            f"uncertainty map's {list(shape)}"
        )
    if not np.issubdtype(prediction.dtype, np.integer) or prediction.min() < 0:
        raise NnUNetError("uncertain regions: the prediction must be a label map of non-negative integers")
    num_labels = int(prediction.max()) + 1
    inside = labels > 0
    counts = np.bincount(
        labels[inside].astype(np.int64) * num_labels + prediction[inside],
        minlength=(int(labels.max()) + 1) * num_labels,
    ).reshape(-1, num_labels)
    return counts[kept].argmax(1)
