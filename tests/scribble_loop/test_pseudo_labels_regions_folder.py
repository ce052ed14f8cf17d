"""make_pseudo_labels_for_folder on a region-based dataset: region probabilities in, plain label maps out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.exceptions import NnUNetError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles
from nnunetv2.scribble_loop.label_probabilities import label_probabilities
from nnunetv2.scribble_loop.pseudo_label_folder import _unannotated_value, make_pseudo_labels_for_folder

CASES = ("case_000", "case_001")
IGNORE = 3  # synthetic regions dataset: whole = [1, 2], core = [2], ignore = 3


@pytest.fixture(scope="module")
def region_inputs(tmp_path_factory) -> dict[str, Path]:
    """Read-only: a 2-case 3D region dataset with an ignore label, partly wrong region probabilities of a network
    whose whole tumour is shifted sideways, and simulated correction scribbles on its painted prediction."""
    root = tmp_path_factory.mktemp("regions")
    dataset = root / "Dataset951_Regions"
    generate_synthetic_dataset(dataset, num_cases=2, shape=(8, 24, 24), regions=True, ignore_label=True)
    manager = LabelManager.from_dataset_json(_dataset_json(dataset))
    io = SimpleITKIO()
    (root / "probabilities").mkdir()
    (root / "scribbles").mkdir()
    for case in CASES:
        reference, properties = io.read_seg(dataset / "labelsTr" / f"{case}.nii.gz")
        labels = np.where(reference[0] == IGNORE, 0, reference[0])
        whole = np.roll(labels >= 1, 3, axis=-1)
        core = labels == 2
        regions = np.stack([ndimage.gaussian_filter(m.astype(np.float32), 1.0) for m in (whole, core)])
        np.savez_compressed(root / "probabilities" / f"{case}.npz", probabilities=regions.astype(np.float32))
        painted = manager.probabilities_to_segmentation(regions)
        scribbles = simulate_correction_scribbles(
            reference[0].astype(np.int64), painted.astype(np.int64), IGNORE, seed=0
        )
        assert (scribbles != IGNORE).any()
        io.write_seg(scribbles, root / "scribbles" / f"{case}.nii.gz", properties)
    return {
        "dataset": dataset,
        "images": dataset / "imagesTr",
        "labels": dataset / "labelsTr",
        "probabilities": root / "probabilities",
        "scribbles": root / "scribbles",
    }


def _dataset_json(dataset: Path):
    from nnunetv2.formats.dataset_json import DatasetJson

    return DatasetJson.load(dataset / "dataset.json")


def test_region_probabilities_become_plain_pseudo_labels_that_fix_errors(region_inputs, tmp_path):
    manager = LabelManager.from_dataset_json(_dataset_json(region_inputs["dataset"]))
    out = tmp_path / "out"
    summary = make_pseudo_labels_for_folder(
        region_inputs["images"],
        region_inputs["probabilities"],
        region_inputs["scribbles"],
        out,
        dataset=region_inputs["dataset"],
        device="cpu",
        progress=False,
    )
    io = SimpleITKIO()
    for case in CASES:
        pseudo = io.read_seg(out / f"{case}.nii.gz")[0][0]
        reference = io.read_seg(region_inputs["labels"] / f"{case}.nii.gz")[0][0]
        scribbles = io.read_seg(region_inputs["scribbles"] / f"{case}.nii.gz")[0][0]
        regions = np.load(region_inputs["probabilities"] / f"{case}.npz")["probabilities"]
        assert set(np.unique(pseudo)) <= {0, 1, 2}
        drawn = scribbles != IGNORE
        assert np.array_equal(pseudo[drawn], scribbles[drawn])
        entry = summary["cases"][case]
        assert entry["unannotated_value"] == IGNORE  # the dataset's ignore label
        # changes are counted against the argmax of the label probabilities
        network = label_probabilities(regions, manager).argmax(0)
        assert entry["changed_voxels"] == int((pseudo != network).sum()) > 0
        annotated = reference != IGNORE
        painted = manager.probabilities_to_segmentation(regions)
        assert ((pseudo != reference) & annotated).sum() < ((painted != reference) & annotated).sum()
        confidence = io.read_images([out / "confidence" / f"{case}_confidence.nii.gz"])[0]
        assert confidence.min() >= 0 and confidence.max() <= 1


def test_a_case_without_scribbles_gets_the_argmax_of_the_label_probabilities(region_inputs, tmp_path):
    scribbles = tmp_path / "scribbles"
    scribbles.mkdir()
    shutil.copy(region_inputs["scribbles"] / "case_000.nii.gz", scribbles)
    out = tmp_path / "out"
    make_pseudo_labels_for_folder(
        region_inputs["images"],
        region_inputs["probabilities"],
        scribbles,
        out,
        dataset=region_inputs["dataset"],
        device="cpu",
        progress=False,
    )
    manager = LabelManager.from_dataset_json(_dataset_json(region_inputs["dataset"]))
    regions = np.load(region_inputs["probabilities"] / "case_001.npz")["probabilities"]
    pseudo = SimpleITKIO().read_seg(out / "case_001.nii.gz")[0][0]
    assert np.array_equal(pseudo, label_probabilities(regions, manager).argmax(0))


def test_region_inputs_that_do_not_fit_are_clear_errors(region_inputs, tmp_path):
    args = (region_inputs["images"], tmp_path / "probabilities", region_inputs["scribbles"], tmp_path / "out")
    shutil.copytree(region_inputs["probabilities"], tmp_path / "probabilities")
    # without the dataset nothing says these are regions: they do not sum to 1, and -d is the way out
    with pytest.raises(NnUNetError, match="do not sum to 1 over the classes .*pass its dataset with -d"):
        make_pseudo_labels_for_folder(*args, unannotated_value=IGNORE, device="cpu", progress=False)
    # a scribble value between the label values of a dataset whose regions skip one (value 1)
    skipping = json.loads((region_inputs["dataset"] / "dataset.json").read_text())
    skipping["labels"] = {"background": 0, "whole": [2, 3], "core": [3], "ignore": 4}
    skipping["regions_class_order"] = [2, 3]
    (tmp_path / "dataset.json").write_text(json.dumps(skipping))
    with pytest.raises(
        NnUNetError,
        match=r"case_000.nii.gz: scribble value 1 is not a label value of dataset.json "
        r"\(\[0, 2, 3\]\)",
    ):
        make_pseudo_labels_for_folder(*args, dataset=tmp_path / "dataset.json", device="cpu", progress=False)
    # one channel too many for the dataset's two regions
    np.savez(tmp_path / "probabilities" / "case_000.npz", probabilities=np.full((3, 8, 24, 24), 0.5, np.float32))
    with pytest.raises(NnUNetError, match="3 probability channels, but the dataset has 2 regions"):
        make_pseudo_labels_for_folder(*args, dataset=region_inputs["dataset"], device="cpu", progress=False)


def test_unannotated_default_is_the_ignore_label_else_the_highest_label_value_plus_one():
    with_ignore = LabelManager({"background": 0, "whole": [1, 2], "core": [2], "ignore": 5}, [1, 2])
    without = LabelManager({"background": 0, "whole": [1, 2], "core": [2]}, [1, 2])
    assert _unannotated_value(None, with_ignore, 3) == 5
    assert _unannotated_value(None, without, 3) == 3
    assert _unannotated_value(7, with_ignore, 3) == 7
