"""Ranking uncertain regions on hand-made uncertainty maps: candidates, stroke windows, benefit, distances, budget,
order."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from nnunetv2.annotation.ranking import build_worklist, find_uncertain_regions, novelty
from nnunetv2.exceptions import NnUNetError

_whole_regions = functools.partial(find_uncertain_regions, window_radius=0)  # one candidate per region


def _map() -> np.ndarray:
    """Slice 1: a 6x6 square at 0.9 (mass 32.4) and an 8x8 square at 0.6 (38.4); slice 3: a 2x2 speck."""
    u = np.zeros((5, 30, 30), dtype=np.float32)
    u[1, 2:8, 2:8] = 0.9
    u[1, 20:28, 20:28] = 0.6
    u[3, 10:12, 10:12] = 1.0
    u[4, 0:5, 0:5] = 0.4  # below the threshold
    return u


def test_regions_are_per_slice_with_mass_size_and_box():
    regions = _whole_regions(_map(), axis=0, threshold=0.5, min_region_size=10)
    assert [(r.slice, r.size) for r in regions] == [(1, 64), (1, 36)]  # by mass: 38.4 before 32.4
    big, small = regions
    assert big.mass == pytest.approx(38.4, rel=1e-5) and small.mass == pytest.approx(32.4, rel=1e-5)
    assert big.bbox == ((1, 2), (20, 28), (20, 28)) and small.bbox == ((1, 2), (2, 8), (2, 8))
    assert big.centroid == pytest.approx((1.0, 23.5, 23.5))
    assert big.distance_to_scribbles is None and big.predicted_label is None
    # the 4-voxel speck is dropped by min_region_size, the 0.4 square by the threshold
    assert len(_whole_regions(_map(), threshold=0.5, min_region_size=4)) == 3
    assert len(_whole_regions(_map(), threshold=0.3, min_region_size=10)) == 3


def test_a_3d_blob_gives_one_region_per_slice_along_the_chosen_axis():
    u = np.zeros((6, 10, 12), dtype=np.float32)
    u[1:4, 2:6, 3:9] = 1.0
    along_z = _whole_regions(u, axis=0, min_region_size=1)
    assert sorted(r.slice for r in along_z) == [1, 2, 3] and all(r.size == 24 for r in along_z)
    along_x = _whole_regions(u, axis=2, min_region_size=1)
    assert sorted(r.slice for r in along_x) == [3, 4, 5, 6, 7, 8]
    assert all(r.bbox == ((1, 4), (2, 6), (r.slice, r.slice + 1)) and r.size == 12 for r in along_x)


def test_spacing_scales_centroids_and_a_2d_map_is_one_slice():
    u = np.zeros((8, 8), dtype=np.float32)
    u[2:6, 2:6] = 0.8
    (region,) = _whole_regions(u, min_region_size=1, spacing=[999.0, 2.0, 1.0])
    assert region.slice == 0 and region.bbox == ((0, 1), (2, 6), (2, 6))
    assert region.centroid == pytest.approx((0.0, 7.0, 3.5))  # y in units of the finest spacing (1)


def test_prediction_names_the_majority_label_and_scribbles_give_distances():
    u = _map()
    prediction = np.zeros(u.shape, dtype=np.uint8)
    prediction[1, 20:28, 20:25] = 2  # 40 of the 64 voxels of the big region
    scribbled = np.zeros(u.shape, dtype=bool)
    scribbled[1, 2:8, 10] = True  # 3 voxels right of the small region's last column (7)
    regions = {r.size: r for r in _whole_regions(u, prediction=prediction, scribbled=scribbled)}
    assert regions[64].predicted_label == 2 and regions[36].predicted_label == 0
    assert regions[36].distance_to_scribbles == pytest.approx(3.0)
    assert regions[64].distance_to_scribbles == pytest.approx(np.hypot(20 - 10, 20 - 7))


def test_benefit_is_mass_times_novelty_and_budget_and_cap_are_respected():
    other = np.zeros((5, 30, 30), dtype=np.float32)
    other[2, 10:15, 10:15] = 0.8  # mass 20
    other[3, 20:24, 20:24] = 0.8  # mass 12.8
    regions = {"a": _whole_regions(_map()), "b": _whole_regions(other)}
    entries, cases = build_worklist(regions, budget=3, distance_scale=0)
    assert len(entries) == 3
    assert [(e.case, e.size) for e in entries] == [("a", 64), ("a", 36), ("b", 25)]
    assert [e.score for e in entries] == pytest.approx([38.4, 32.4, 20.0], rel=1e-5)
    assert cases["a"]["case_rank"] == 1 and cases["b"]["case_rank"] == 2
    assert cases["a"]["worklist_regions"] == 2 and cases["b"]["worklist_regions"] == 1
    assert cases["b"]["candidate_regions"] == 2 and cases["b"]["candidate_benefit"] == pytest.approx(32.8)
    capped, _ = build_worklist(regions, budget=10, distance_scale=0, max_per_case=1)
    assert sorted(e.case for e in capped) == ["a", "b"]
    assert build_worklist(regions, budget=0)[0] == []


def test_existing_scribbles_and_picked_neighbours_lower_the_benefit():
    u = np.zeros((4, 40, 40), dtype=np.float32)
    u[1, 2:8, 2:8] = 0.9  # near the scribble below
    u[1, 30:36, 30:36] = 0.9  # far from it, same mass
    scribbled = np.zeros(u.shape, dtype=bool)
    scribbled[1, 10, 2:8] = True
    regions = _whole_regions(u, scribbled=scribbled)
    entries, _ = build_worklist({"a": regions}, budget=2, distance_scale=5.0)
    first, second = entries
    assert first.bbox[1] == (30, 36) and first.score == pytest.approx(32.4 * novelty(first.distance_to_scribbles, 5.0))
    assert second.distance_to_scribbles == pytest.approx(3.0)
    assert second.score == pytest.approx(32.4 * novelty(3.0, 5.0) * novelty(np.hypot(28, 28), 5.0), rel=1e-4)

    twin = np.zeros((4, 20, 20), dtype=np.float32)
    twin[1:3, 5:10, 5:10] = 1.0  # the same region in two adjacent slices
    entries, _ = build_worklist({"a": _whole_regions(twin)}, budget=2, distance_scale=5.0, exclusion_radius=0)
    assert entries[0].score == pytest.approx(25.0)
    assert entries[1].score == pytest.approx(25.0 * novelty(1.0, 5.0))  # centroids 1 voxel apart
    # with an exclusion radius (here 10) the twin is dropped once the first one is picked ...
    assert len(build_worklist({"a": _whole_regions(twin)}, budget=2, distance_scale=5.0, exclusion_radius=10.0)[0]) == 1
    # ... and so is a region 9 voxels away, but not one 11 voxels away, nor one in another case
    apart = np.zeros((4, 30, 30), dtype=np.float32)
    apart[1, 5:10, 5:10] = 1.0
    apart[1, 5:10, 14:19] = 0.9  # centroid 9 voxels from the first
    apart[1, 16:21, 5:10] = 0.8  # 11 voxels
    entries, _ = build_worklist(
        {"a": _whole_regions(apart), "b": _whole_regions(twin)}, budget=10, distance_scale=0, exclusion_radius=10.0
    )
    assert sorted((e.case, e.bbox[1], e.bbox[2]) for e in entries) == [
        ("a", (5, 10), (5, 10)),
        ("a", (16, 21), (5, 10)),
        ("b", (5, 10), (5, 10)),
    ]


def test_entries_are_grouped_by_case_then_slice():
    u = np.zeros((4, 30, 30), dtype=np.float32)
    u[1, 0:4, 0:4] = 1.0  # 16
    u[2, 10:15, 10:15] = 1.0  # 25: the best slice
    u[1, 20:24, 20:24] = 1.0  # 16: slice 1 holds 32 in total
    weak = np.zeros_like(u)
    weak[0, 0:5, 0:6] = 1.0  # 30: the best single region, but its case holds less
    entries, _ = build_worklist(
        {"strong": _whole_regions(u), "weak": _whole_regions(weak)}, budget=10, distance_scale=0
    )
    assert [(e.case, e.slice, e.slice_rank) for e in entries] == [
        ("strong", 1, 1),
        ("strong", 1, 1),
        ("strong", 2, 2),
        ("weak", 0, 1),
    ]
    assert [e.rank for e in entries] == [1, 2, 3, 4]
    assert [e.case_rank for e in entries] == [1, 1, 1, 2]


def test_regions_are_split_into_stroke_windows_at_their_most_uncertain_spot():
    u = np.zeros((3, 30, 40), dtype=np.float32)
    u[1, 10:13, 2:32] = 0.6  # a tube 3 wide, 30 long ...
    u[1, 10:13, 20:25] = 0.8
    u[1, 11, 22] = 1.0  # ... most uncertain at (11, 22)
    windows = find_uncertain_regions(u, min_region_size=5, window_radius=2)  # boxes of 5 x 5
    assert windows[0].bbox == ((1, 2), (10, 13), (20, 25)) and windows[0].mass == pytest.approx(14 * 0.8 + 1.0)
    # the rest of the tube is tiled without overlap (on a plateau, where a window holds the most), largest first
    assert [w.bbox[2] for w in windows[1:]] == [(2, 7), (7, 12), (12, 17), (25, 30), (17, 20), (30, 32)]
    assert [w.size for w in windows] == [15, 15, 15, 15, 15, 9, 6] and sum(w.size for w in windows) == 90
    assert len(find_uncertain_regions(u, min_region_size=10, window_radius=2)) == 5  # later windows need 10
    # 3 x 3 windows can never hold 10 voxels: later ones need more than half of theirs (5 of 9)
    small = [w.size for w in find_uncertain_regions(u, min_region_size=10)]
    assert len(small) >= 10 and min(small[1:]) >= 5 and max(small) == 9 and sum(small) <= 90
    speck = np.zeros((1, 20, 20), dtype=np.float32)
    speck[0, 2:14, 5] = 0.9
    assert [w.size for w in find_uncertain_regions(speck, min_region_size=10, window_radius=2)] == [
        5
    ]  # the first window stays
    assert len(find_uncertain_regions(u, min_region_size=5, window_radius=0)) == 1
    # anisotropic spacing: 2 voxels of the finest axis are 1 voxel of an axis twice as coarse
    coarse = find_uncertain_regions(u, min_region_size=5, spacing=[1.0, 1.0, 2.0], window_radius=2)[0]
    assert coarse.bbox[1:] == ((10, 13), (21, 24))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"axis": 1, "uncertainty": np.ones((1, 5, 5))}, "a 2D image has only slices along axis 0"),
        ({"axis": 3}, "axis must be 0, 1 or 2"),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"min_region_size": 0}, "min_region_size must be an integer >= 1"),
        ({"uncertainty": np.full((2, 3, 3), np.nan)}, "contains NaN"),
        ({"uncertainty": np.ones((2, 2, 2, 2))}, "expected a 2D or 3D map"),
        ({"prediction": np.zeros((2, 4, 4), dtype=np.uint8)}, "prediction of shape [2, 4, 4] does not match"),
        ({"scribbled": np.zeros((3, 3), dtype=bool)}, "scribbles of shape [1, 3, 3] do not match"),
        ({"spacing": [1.0, 1.0]}, "spacing [1.0, 1.0] must be 3 positive numbers"),
        ({"window_radius": -1}, "window_radius must be a number >= 0"),
        ({"window_radius": "2"}, "window_radius must be a number >= 0"),
    ],
)
def test_bad_region_arguments_raise_one_clear_error(kwargs, message):
    arguments = {"uncertainty": np.ones((2, 5, 5), dtype=np.float32), "min_region_size": 1, **kwargs}
    with pytest.raises(NnUNetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        find_uncertain_regions(**arguments)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"budget": -1}, "budget must be an integer >= 0"),
        ({"budget": 2.5}, "budget must be an integer >= 0"),
        ({"distance_scale": -1.0}, "distance_scale must be a number >= 0"),
        ({"max_per_case": 0}, "max_per_case must be an integer >= 1"),
        ({"exclusion_radius": -2.0}, "exclusion_radius must be a number >= 0"),
    ],
)
def test_bad_selection_arguments_raise_one_clear_error(kwargs, message):
    with pytest.raises(NnUNetError, match=message):
        build_worklist({"a": []}, **{"budget": 5, **kwargs})
