import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.registry import reader_writer_class_from_name
from nnunetv2.sparse.expand import expand_scribbles
from nnunetv2.sparse.sparse_dataset import expand_sparse_dataset, expand_sparse_dataset_by_id, simulate_sparse_dataset


def two_tissues(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy (1, 40, 40) image of a dark left and bright right half, its dense label and two strokes."""
    rng = np.random.default_rng(seed)
    label = np.zeros((1, 40, 40), dtype=np.int16)
    label[..., 20:] = 1
    image = (100.0 + 60.0 * label + rng.normal(0, 10, label.shape))[None]
    sparse = np.full(label.shape, 2, dtype=np.int16)
    sparse[0, 5:35, 8] = 0
    sparse[0, 5:35, 31] = 1
    return image, label, sparse


@pytest.mark.parametrize("method", ["intensity", "random_walker"])
def test_expansion_grows_strokes_into_the_right_tissue(method):
    image, label, sparse = two_tissues()
    grown = expand_scribbles(image, sparse, ignore_label=2, method=method)
    labelled = grown != 2
    assert labelled.mean() > 0.6  # from 3.75% annotated
    assert (grown[labelled] == label[labelled]).mean() > 0.98
    assert np.array_equal(grown[sparse != 2], sparse[sparse != 2])  # strokes keep their class


def test_unsure_voxels_stay_ignored_and_one_class_slices_do_not_grow():
    image, label, sparse = two_tissues()
    # a band of a third tissue that strokes of both classes cross: its voxels are no class's for sure
    image[0, 0, :, 16:24] = 130.0 + np.random.default_rng(1).normal(0, 10, (40, 8))
    sparse[0, 2:38, 19], sparse[0, 2:38, 20] = 0, 1
    grown = expand_scribbles(image, sparse, ignore_label=2, min_probability=0.9)
    band = sparse[0, :, 17:23] == 2
    assert (grown[0, :, 17:23][band] == 2).mean() > 0.6
    assert (grown[0, :, :14] == 0).mean() > 0.9 and (grown[0, :, 26:] == 1).mean() > 0.9
    only_one = np.where(sparse == 1, 2, sparse)  # background strokes only: nothing says where it ends
    assert np.array_equal(expand_scribbles(image, only_one, ignore_label=2), only_one)


def test_expansion_grows_each_slice_or_the_whole_volume():
    image, label, sparse = two_tissues()
    volume_image, volume_label = np.repeat(image, 4, axis=1), np.repeat(label, 4, axis=0)
    volume_sparse = np.full(volume_label.shape, 2, dtype=np.int16)
    volume_sparse[1] = sparse[0]  # strokes in one slice only
    per_slice = expand_scribbles(volume_image, volume_sparse, 2, spacing=(3.0, 1.0, 1.0), axis=0)
    assert (per_slice[[0, 2, 3]] == 2).all() and (per_slice[1] != 2).mean() > 0.6
    whole = expand_scribbles(volume_image, volume_sparse, 2, spacing=(3.0, 1.0, 1.0), axis=None)
    assert (whole[[0, 2, 3]] != 2).mean() > 0.6
    assert (whole[whole != 2] == volume_label[whole != 2]).mean() > 0.98


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "grabcut"}, "unknown method 'grabcut'"),
        ({"min_probability": 0.3}, r"min_probability must be a number in \[0.5, 1\], got 0.3"),
        ({"neighbours": 0}, "neighbours must be an integer >= 1, got 0"),
        ({"beta": -1.0}, "beta must be a number > 0, got -1.0"),
        ({"axis": 3}, "axis 3 does not exist"),
        ({"alpha": 1.0}, "unknown option 'alpha'"),
    ],
)
def test_bad_expansion_options_raise_one_line(options, message):
    image, _, sparse = two_tissues()
    with pytest.raises(DatasetError, match=message) as caught:
        expand_scribbles(image, sparse, 2, **options)
    assert "\n" not in str(caught.value)


def test_expanded_dataset_agrees_with_the_dense_labels(synthetic_dataset_3d, tmp_path):
    sparse_folder = tmp_path / "Dataset911_Sparse"
    simulate_sparse_dataset(synthetic_dataset_3d, sparse_folder, "scribble", seed=0, thickness=1)
    target = tmp_path / "Dataset912_Expanded"
    fractions = expand_sparse_dataset(sparse_folder, target)
    verify_dataset_integrity(target)
    record = DatasetJson.load(target / "dataset.json").extra["scribble_expansion"]
    assert record["source"] == "Dataset911_Sparse" and record["method"] == "intensity"
    assert fractions["annotated after"] > 3 * fractions["annotated before"]
    io = reader_writer_class_from_name("SimpleITKIO")()
    right = total = 0
    for label_file in sorted((synthetic_dataset_3d / "labelsTr").iterdir()):
        dense, _ = io.read_seg(label_file)
        grown, _ = io.read_seg(target / "labelsTr" / label_file.name)
        labelled = grown != 3
        right += int((grown[labelled] == dense[labelled]).sum())
        total += int(labelled.sum())
    assert right / total > 0.9


def test_expansion_refuses_dense_datasets_and_taken_ids(synthetic_dataset_3d, tmp_path, nnunet_env):
    raw = nnunet_env["nnUNet_raw"]
    shutil.copytree(synthetic_dataset_3d, raw / "Dataset901_Synthetic3D")
    with pytest.raises(DatasetError, match="has no ignore label"):
        expand_sparse_dataset_by_id(901, 908)
    simulate_sparse_dataset(raw / "Dataset901_Synthetic3D", raw / "Dataset905_Sparse", "scribble")
    target, _ = expand_sparse_dataset_by_id(905, 906, min_probability=0.9)
    assert target.name == "Dataset906_Sparse_expanded"
    with pytest.raises(DatasetError, match="already exists"):
        expand_sparse_dataset_by_id(905, 906)


def test_cli_expands_and_reports_bad_options(synthetic_dataset_3d, nnunet_env):
    raw = nnunet_env["nnUNet_raw"]
    simulate_sparse_dataset(synthetic_dataset_3d, raw / "Dataset905_Sparse", "scribble")
    command = Path(sys.executable).parent / "nnUNetv2_expand_sparse_labels"
    done = subprocess.run([str(command), "-d", "905", "-o", "906"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "annotated before:" in done.stdout and "annotated after:" in done.stdout
    assert (raw / "Dataset906_Sparse_expanded" / "labelsTr").is_dir()
    bad = subprocess.run(
        [str(command), "-d", "905", "-o", "907", "--min_probability", "2"], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: scribble expansion: min_probability must be a number in [0.5, 1], got 2.0"
