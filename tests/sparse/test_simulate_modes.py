import numpy as np
import pytest

from nnunetv2.sparse.simulate import (
    annotated_fraction_per_class,
    scribbles_in_slice,
    simulate_patches,
    simulate_scribbles,
    simulate_slices,
)

IGNORE = 3


@pytest.fixture(scope="module")
def dense():
    z, y, x = np.mgrid[:12, :64, :64]
    labels = np.zeros((12, 64, 64), dtype=np.int16)
    labels[((y - 32) ** 2 + (x - 32) ** 2) < 20**2] = 1
    labels[((y - 28) ** 2 + (x - 40) ** 2) < 5**2] = 2
    return labels


def test_scribbles_are_sparse_correct_and_cover_every_class_in_every_slice(dense):
    sparse = simulate_scribbles(dense, IGNORE, seed=1)
    annotated = sparse != IGNORE
    assert np.array_equal(sparse[annotated], dense[annotated])  # a scribble never lies
    assert 0.01 < annotated.mean() < 0.15
    for z in range(dense.shape[0]):
        assert set(np.unique(sparse[z])) == {0, 1, 2, IGNORE}
    fractions = annotated_fraction_per_class(dense, sparse, IGNORE)
    assert set(fractions) == {0, 1, 2} and all(0 < f < 0.6 for f in fractions.values())


def test_scribbles_are_reproducible_and_seed_dependent(dense):
    a = simulate_scribbles(dense, IGNORE, seed=3)
    assert np.array_equal(a, simulate_scribbles(dense, IGNORE, seed=3))
    assert not np.array_equal(a, simulate_scribbles(dense, IGNORE, seed=4))


def test_scribble_slice_fraction_and_axis(dense):
    sparse = simulate_scribbles(dense, IGNORE, axis=0, slice_fraction=0.25, seed=0)
    scribbled_slices = [z for z in range(12) if (sparse[z] != IGNORE).any()]
    assert len(scribbled_slices) == 3
    along_y = simulate_scribbles(dense, IGNORE, axis=1, slice_fraction=0.5, seed=0)
    assert sum((along_y[:, y] != IGNORE).any() for y in range(64)) <= 32


def test_thicker_scribbles_annotate_more(dense):
    thin = (simulate_scribbles(dense, IGNORE, thickness=1, seed=0) != IGNORE).sum()
    thick = (simulate_scribbles(dense, IGNORE, thickness=5, seed=0) != IGNORE).sum()
    assert thick > 1.5 * thin


def test_tiny_components_get_no_scribble():
    labels = np.zeros((20, 20), dtype=np.int16)
    labels[5, 5] = 1
    mask = scribbles_in_slice(labels, np.random.default_rng(0), classes=[1])
    assert not mask.any()


def test_slices_mode(dense):
    sparse = simulate_slices(dense, IGNORE, fraction=0.25, axes=(0,), evenly_spaced=True)
    kept = [z for z in range(12) if (sparse[z] != IGNORE).all()]
    assert len(kept) == 3 and all((sparse[z] == IGNORE).all() for z in set(range(12)) - set(kept))
    assert np.array_equal(sparse[kept], dense[kept])
    three_axes = simulate_slices(dense, IGNORE, fraction=0.1, axes=(0, 1, 2), seed=2)
    assert (three_axes != IGNORE).mean() > (simulate_slices(dense, IGNORE, 0.1, (0,), seed=2) != IGNORE).mean()


def test_patches_mode(dense):
    sparse = simulate_patches(dense, IGNORE, num_patches=1, patch_size=8, seed=0)
    annotated = np.argwhere(sparse != IGNORE)
    assert len(annotated) == 8 * 8 * 8
    assert np.array_equal(annotated.max(0) - annotated.min(0), [7, 7, 7])
    flat = simulate_patches(dense[:1], IGNORE, num_patches=1, patch_size=8, seed=0)
    assert (flat != IGNORE).sum() == 64  # a 2D map gets squares
