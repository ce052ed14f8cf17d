"""nnUNetv2_scribble_loop end to end on a tiny generated region-based 3D dataset (whole = [1, 2], core = [2]):
a region model's probabilities become label probabilities, the pseudo labels stay label maps, and the rounds
fine-tune with the confidence-weighted Dice + BCE."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.model_folder import model_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.scribble_loop.label_probabilities import label_probabilities
from nnunetv2.scribble_loop.loop import ScribbleLoopRequest, run_scribble_loop
from tests.scribble_loop.loop_setup import prepared_scribble_loop, use_nnunet_folders

DATASET = "Dataset994_LoopRegions"
UNANNOTATED = 3  # label values 0, 1, 2 and no ignore label: undrawn voxels hold 3


@pytest.fixture(scope="module")
def prepared_regions(tmp_path_factory):
    """As the plain loop test's fixture, with a region-based dataset."""
    root = tmp_path_factory.mktemp("scribble_loop_regions")
    with prepared_scribble_loop(root, 994, "LoopRegions", UNANNOTATED, seed=1, regions=True) as cases:
        yield root, cases


def test_two_rounds_on_a_region_dataset(prepared_regions, monkeypatch):
    root, cases = prepared_regions
    use_nnunet_folders(monkeypatch, root)
    preliminary = model_folder(DATASET, "nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    dataset_json = DatasetJson.load(preliminary / "dataset.json")
    manager = LabelManager.from_dataset_json(dataset_json)
    assert manager.has_regions and manager.regions_class_order == [1, 2]

    metrics = run_scribble_loop(
        ScribbleLoopRequest(
            994,
            "3d_fullres",
            "all",
            str(root / "pool" / "images"),
            str(root / "scribbles"),
            str(root / "loop"),
            num_rounds=2,
            epochs_per_round=1,
            iterations_per_epoch=2,
            val_iterations_per_epoch=1,
            seed=0,
            num_data_workers=0,
            pool_reference=str(root / "pool" / "labels"),
            test_images=str(root / "test" / "images"),
            test_reference=str(root / "test" / "labels"),
            device="cpu",
            show_progress=False,
        )
    )

    io = SimpleITKIO()
    pool = cases[:3]
    for r in range(3):
        folder = root / "loop" / f"round_{r}"
        assert json.loads((folder / "metrics.json").read_text()) == metrics[r]
        for key in ("prediction_dice", "pseudo_label_dice"):
            assert 0 <= metrics[r]["pool"][key]["mean"] <= 1
        assert set(metrics[r]["test"]["dice"]["per_label"]) == {"(1, 2)", "(2,)"}  # scored per region
        for case in pool:
            regions = np.load(folder / "predictions" / f"{case}.npz")["probabilities"]
            assert regions.shape[0] == 2  # the region model's sigmoid outputs, one per region
            pseudo = io.read_seg(folder / "pseudo_labels" / f"{case}.nii.gz")[0][0]
            assert set(np.unique(pseudo)) <= {0, 1, 2}
            confidence = io.read_images([folder / "pseudo_labels" / "confidence" / f"{case}_confidence.nii.gz"])[0]
            assert confidence.min() >= 0 and confidence.max() <= 1
            scribble_file = root / "scribbles" / f"{case}.nii.gz"
            if scribble_file.is_file():
                scribbles = io.read_seg(scribble_file)[0][0]
                drawn = scribbles != UNANNOTATED
                assert drawn.any() and np.array_equal(pseudo[drawn], scribbles[drawn])
            elif r == 0:  # no correction: the network's labels, read from its label probabilities
                assert np.array_equal(pseudo, label_probabilities(regions, manager).argmax(0))
            if r > 0:  # a label changes only to a value the new network's label probabilities give >= 0.8
                before = io.read_seg(root / "loop" / f"round_{r - 1}" / "pseudo_labels" / f"{case}.nii.gz")[0][0]
                support = np.take_along_axis(label_probabilities(regions, manager), pseudo[None].astype(np.int64), 0)[0]
                assert np.all(support[pseudo != before] >= 0.8 - 1e-6)
    for r in (1, 2):
        training = metrics[r]["training"]
        assert training["epochs"] == 1 and np.isfinite(training["final_train_loss"])
        fold = root / "loop" / f"round_{r}" / "model" / "fold_all"
        assert (fold / "checkpoint_final.pth").is_file()
        log = next(fold.glob("training_log_*.txt")).read_text()
        assert "confidence-weighted loss: 3 case(s) with a confidence map" in log
