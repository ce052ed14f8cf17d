import numpy as np
import pytest

from nnunetv2.postprocessing.connected_components import (
    apply_postprocessing,
    largest_component,
    remove_all_but_largest_component,
)


def test_largest_component_uses_full_connectivity_in_3d():
    mask = np.zeros((3, 5, 5), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner-touching: one 26-connected component
    mask[2, 4, 2:5] = True  # three voxels, separate
    kept = largest_component(mask)
    assert kept.sum() == 3 and kept[2, 4, 2:5].all()
    mask[2, 3, 1] = True  # now corner-touches the bar -> 4 voxels, wins over 2
    assert largest_component(mask)[2, 3, 1]


def test_largest_component_of_2d_image_stored_as_3d_is_8_connected_in_plane():
    mask = np.zeros((1, 6, 6), dtype=bool)
    mask[0, 0, 0] = mask[0, 1, 1] = mask[0, 2, 2] = True  # diagonal chain: one component in 2D
    mask[0, 5, 4:6] = True
    kept = largest_component(mask)
    assert kept.shape == mask.shape and kept.sum() == 3 and kept[0, 2, 2]
    assert not largest_component(np.zeros((1, 4, 4), dtype=bool)).any()


def test_remove_all_but_largest_component_for_label_region_and_union():
    seg = np.zeros((1, 8, 8), dtype=np.uint8)
    seg[0, :3, :3] = 1
    seg[0, 1, 1] = 2  # label 2 inside the label-1 block
    seg[0, 6:8, 6:8] = 2  # separate label-2 component of 4 voxels
    seg[0, 7, 0] = 1  # stray label-1 voxel
    out = remove_all_but_largest_component(seg, [1])
    assert out[0, 7, 0] == 0 and (out[0, :3, :3] > 0).all() and seg[0, 7, 0] == 1  # input untouched
    # label 2 alone: the 4-voxel block beats the single inner voxel
    out = remove_all_but_largest_component(seg, [2])
    assert out[0, 1, 1] == 0 and (out[0, 6:8, 6:8] == 2).all()
    # region (1, 2): the block with its inner voxel is one component; the rest goes
    out = remove_all_but_largest_component(seg, [(1, 2)])
    assert out[0, 1, 1] == 2 and out[0, 7, 0] == 0 and (out[0, 6:8, 6:8] == 0).all()


def test_apply_postprocessing_runs_operations_in_order():
    seg = np.zeros((1, 5, 9), dtype=np.uint8)
    seg[0, :2, 0] = 1  # 2 voxels
    seg[0, :, 4] = 2  # 5 voxels
    seg[0, 0, 8] = 2
    out = apply_postprocessing(seg, [[2], [1, 2]])
    assert out[0, 0, 8] == 0 and (out[0, :2, 0] == 0).all() and (out[0, :, 4] == 2).all()
    # the other order: the union first keeps the column, then label 2 has nothing more to drop
    assert np.array_equal(apply_postprocessing(seg, [[1, 2], [2]]), out)
    assert np.array_equal(apply_postprocessing(seg, []), seg)


def test_largest_component_rejects_other_dimensionalities():
    with pytest.raises(ValueError, match="2D or 3D"):
        largest_component(np.ones(4, dtype=bool))
