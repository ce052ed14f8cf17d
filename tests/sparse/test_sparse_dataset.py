import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.registry import reader_writer_class_from_name
from nnunetv2.sparse.sparse_dataset import simulate_sparse_dataset, simulate_sparse_dataset_by_id


def test_scribble_dataset_is_valid_and_correct(synthetic_dataset_3d, tmp_path):
    target = tmp_path / "Dataset911_Sparse"
    fractions = simulate_sparse_dataset(synthetic_dataset_3d, target, "scribble", seed=0)
    dj = DatasetJson.load(target / "dataset.json")
    assert dj.labels["ignore"] == 3 and dj.extra["sparse_annotation"]["mode"] == "scribble"
    assert DatasetJson.load(synthetic_dataset_3d / "dataset.json").extra["name"] == "Dataset901_Synthetic3D"
    assert dj.extra["name"] == "Dataset911_Sparse"  # its own name, not the source's
    verify_dataset_integrity(target)
    io = reader_writer_class_from_name("SimpleITKIO")()
    for label_file in sorted((synthetic_dataset_3d / "labelsTr").iterdir()):
        dense, dense_props = io.read_seg(label_file)
        sparse, sparse_props = io.read_seg(target / "labelsTr" / label_file.name)
        annotated = sparse != 3
        assert np.array_equal(sparse[annotated], dense[annotated])
        assert np.allclose(sparse_props["spacing"], dense_props["spacing"])
    assert (target / "imagesTr" / "case_000_0000.nii.gz").is_symlink()
    assert 0 < fractions["all voxels"] < 0.3 and set(fractions) >= {"background", "all voxels"}


def test_sparse_dataset_refuses_bad_requests(synthetic_dataset_3d, tmp_path, nnunet_env):
    with pytest.raises(DatasetError, match="unknown sparse annotation mode 'dots'"):
        simulate_sparse_dataset(synthetic_dataset_3d, tmp_path / "x", "dots")
    shutil.copytree(synthetic_dataset_3d, nnunet_env["nnUNet_raw"] / "Dataset901_Synthetic3D")
    with pytest.raises(DatasetError, match="is the source dataset's id"):
        simulate_sparse_dataset_by_id(901, 901, "slices")
    target, _ = simulate_sparse_dataset_by_id(901, 905, "patches", patch_size=8, copy_images=True)
    assert target.name == "Dataset905_Synthetic3D_patches"
    assert not (target / "imagesTr" / "case_000_0000.nii.gz").is_symlink()
    with pytest.raises(DatasetError, match="already exists"):
        simulate_sparse_dataset_by_id(901, 905, "slices")
    with pytest.raises(DatasetError, match="already has an ignore label"):
        simulate_sparse_dataset_by_id(905, 906, "slices")


def test_cli_prints_fractions(synthetic_dataset_3d, nnunet_env):
    shutil.copytree(synthetic_dataset_3d, nnunet_env["nnUNet_raw"] / "Dataset901_Synthetic3D")
    code = (
        "import sys; sys.argv = ['x', '-d', '901', '-o', '907', '--mode', 'slices', '--fraction', '0.25'];"
        "from nnunetv2.cli.sparse import simulate_sparse_annotation_entry as e; e()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "annotated background:" in done.stdout and "annotated all voxels:" in done.stdout
    bad = subprocess.run([sys.executable, "-c", code.replace("'901'", "'999'")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no dataset with id 999")
    assert "Traceback" not in bad.stderr
    dj = json.loads((nnunet_env["nnUNet_raw"] / "Dataset907_Synthetic3D_slices" / "dataset.json").read_text())
    assert dj["sparse_annotation"]["fraction"] == 0.25
