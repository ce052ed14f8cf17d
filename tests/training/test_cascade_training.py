"""The 3d_lowres -> 3d_cascade_fullres cascade: previous-stage input in the data loader, training, validation,
prediction."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import blosc2
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.cli.predict import predict_entry
from nnunetv2.cli.train import train_entry
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import open_preprocessed_case, sample_class_locations, save_preprocessed_case
from nnunetv2.dataset.previous_stage import append_previous_stage_channels, save_next_stage_segmentation
from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.inference.predictor import predict_from_dataset_id
from nnunetv2.preprocessing.preprocessor import preprocess_dataset
from nnunetv2.training.augmentation.pipelines import get_validation_transforms
from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader
from nnunetv2.training.run_training import TrainingRequest, run_training
from tests.helpers.tiny_preprocessed import tiny_configuration

NAME = "Dataset983_TinyCascade"
CASES = [f"case_{i:03d}" for i in range(4)]
FAST = dict(num_epochs=1, num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, num_data_workers=0, device="cpu")
LABELS = LabelManager({"background": 0, "blob": 1, "tube": 2})


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _hand_made_plans() -> dict:
    lowres = dict(
        tiny_configuration("3d_lowres", [8, 8, 8], 2), spacing=[2.0, 2.0, 2.0], next_stage="3d_cascade_fullres"
    )
    fullres = dict(tiny_configuration("3d_fullres", [8, 16, 16], 2), spacing=[2.0, 1.0, 1.0], batch_dice=False)
    return {
        "dataset_name": NAME,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [2.0, 1.0, 1.0],
        "original_median_shape_after_transp": [8, 24, 24],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {
            "3d_fullres": fullres,
            "3d_lowres": lowres,
            "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
        },
        "experiment_planner_used": "hand-made",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }


def _run_cli(monkeypatch, capsys, entry, argv: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["nnUNetv2", *argv])
    capsys.readouterr()  # drop earlier output (progress bars)
    code = 0
    try:
        entry(argv) if entry is train_entry else entry()
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.strip()


def test_cascade_trains_on_lowres_validation_outputs_and_predicts(nnunet_env, monkeypatch, capsys):
    raw = nnunet_env["nnUNet_raw"] / NAME
    generate_synthetic_dataset(raw, num_cases=4, shape=(8, 24, 24), spacing=(2.0, 1.0, 1.0), num_test_cases=1)
    preprocessed = nnunet_env["nnUNet_preprocessed"] / NAME
    preprocessed.mkdir()
    (preprocessed / "nnUNetPlans.json").write_text(json.dumps(_hand_made_plans()))
    # two folds, so that every case is validated (and its lowres segmentation written) by one of them
    (preprocessed / "splits_final.json").write_text(
        json.dumps([{"train": CASES[:2], "val": CASES[2:]}, {"train": CASES[2:], "val": CASES[:2]}])
    )
    preprocess_dataset(NAME, configurations=["3d_fullres", "3d_lowres"], num_processes=1, show_progress=False)
    results = nnunet_env["nnUNet_results"] / NAME
    next_stage = results / "nnUNetTrainer__nnUNetPlans__3d_lowres" / "predicted_next_stage" / "3d_cascade_fullres"

    run_training(TrainingRequest(NAME, "3d_lowres", 0, **FAST))
    assert sorted(p.name for p in next_stage.iterdir()) == ["case_002.b2nd", "case_003.b2nd"]
    # the cascade's training cases are validated by lowres fold 1, which has not run yet
    code, err = _run_cli(monkeypatch, capsys, train_entry, [NAME, "3d_cascade_fullres", "0", "-device", "cpu"])
    assert code == 1 and len(err.splitlines()) == 1
    assert (
        f"{next_stage / 'case_000.b2nd'}: previous-stage segmentation of case 'case_000' not found "
        f"(2 of 2 case(s) missing); train every fold of the previous stage" in err
    )

    run_training(TrainingRequest(NAME, "3d_lowres", 1, **FAST))
    fullres_data = preprocessed / "nnUNetPlans_3d_fullres"
    for case in CASES:  # at the cascade's preprocessed shape, as nnU-Net v2 stores them
        stored = blosc2.open(str(next_stage / f"{case}.b2nd"), mode="r")[:]
        assert stored.dtype == np.uint8 and set(np.unique(stored)) <= {0, 1, 2}
        assert stored.shape == open_preprocessed_case(fullres_data, case)[0].shape[1:]

    fold = run_training(TrainingRequest(NAME, "3d_cascade_fullres", 0, **FAST))
    checkpoint = load_checkpoint(fold / "checkpoint_final.pth")
    first_conv = next(v for k, v in checkpoint["network_weights"].items() if k.endswith("conv.weight"))
    assert first_conv.shape[1] == 3  # the image + one-hot blob and tube of the previous stage
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert sorted(Path(c["prediction_file"]).name for c in summary["metric_per_case"]) == [
        "case_002.nii.gz",
        "case_003.nii.gz",
    ]
    # the newest log (the refused run before also started one)
    log = max(fold.glob("training_log_*.txt")).read_text()
    assert "cascade stage: the segmentations of '3d_lowres' in" in log

    lowres_out, cascade_out = nnunet_env["nnUNet_results"] / "lowres_ts", nnunet_env["nnUNet_results"] / "cascade_ts"
    predict_from_dataset_id(
        str(raw / "imagesTs"),
        str(lowres_out),
        NAME,
        "3d_lowres",
        folds=(0, 1),
        device="cpu",
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )
    code, err = _run_cli(
        monkeypatch,
        capsys,
        predict_entry,
        [
            "-i",
            str(raw / "imagesTs"),
            "-o",
            str(cascade_out),
            "-d",
            NAME,
            "-c",
            "3d_cascade_fullres",
            "-f",
            "0",
            "-prev_stage_predictions",
            str(lowres_out),
            "-device",
            "cpu",
            "-npp",
            "1",
            "-nps",
            "1",
            "--disable_progress_bar",
        ],
    )
    assert code == 0, err
    image = sitk.ReadImage(str(raw / "imagesTs" / "case_004_0000.nii.gz"))
    prediction = sitk.ReadImage(str(cascade_out / "case_004.nii.gz"))
    assert prediction.GetSize() == image.GetSize() and prediction.GetSpacing() == image.GetSpacing()
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}


@pytest.fixture
def cascade_case(tmp_path) -> tuple[Path, Path, np.ndarray]:
    """A (1, 6, 10, 10) preprocessed case and its previous-stage segmentation (labels 0-2 in stripes)."""
    data_folder, previous_folder = tmp_path / "data", tmp_path / "previous"
    seg = np.zeros((1, 6, 10, 10), dtype=np.int16)
    seg[:, :, 3:7, 3:7] = 1
    data = np.random.default_rng(0).normal(size=seg.shape).astype(np.float32)
    properties = {"spacing": [1.0, 1.0, 1.0], "shape_before_cropping": [6, 10, 10]}
    save_preprocessed_case(data_folder, "a", data, seg, properties, sample_class_locations(seg, [1, 2]))
    previous = (np.arange(10)[None, None, :] % 3 * np.ones((6, 10, 1))).astype(np.uint8)
    save_next_stage_segmentation(previous, previous_folder, "a")
    return data_folder, previous_folder, previous


def test_loader_adds_the_previous_stage_as_seg_channel_and_one_hot_input(cascade_case):
    data_folder, previous_folder, previous = cascade_case
    loader = NnUNetDataLoader(
        data_folder, ["a"], 1, (8, 10, 10), (8, 10, 10), LABELS, 0.0, seed=0, previous_stage_folder=previous_folder
    )
    seg = next(loader)["target"][0]
    assert seg.shape == (2, 8, 10, 10)
    inside = seg[1][(seg[0] >= 0)]  # the 8-slice patch pads the 6-slice case with -1 in both channels
    assert set(inside.unique().tolist()) == {0, 1, 2} and int((seg[1] == -1).sum()) == 2 * 100
    assert torch.equal(seg[1][seg[0] >= 0].reshape(6, 10, 10), torch.from_numpy(previous.astype(np.int16)))

    transforms = get_validation_transforms(None, is_cascaded=True, foreground_labels=LABELS.foreground_labels)
    batch = next(
        NnUNetDataLoader(
            data_folder,
            ["a"],
            1,
            (6, 10, 10),
            (6, 10, 10),
            LABELS,
            0.0,
            transforms,
            seed=0,
            previous_stage_folder=previous_folder,
        )
    )
    assert batch["data"].shape == (1, 3, 6, 10, 10) and batch["target"].shape == (1, 1, 6, 10, 10)
    expected = append_previous_stage_channels(
        open_preprocessed_case(data_folder, "a")[0][:], previous, LABELS.foreground_labels
    )
    assert np.array_equal(batch["data"][0].numpy(), expected)


def test_loader_reads_older_npz_and_rejects_missing_or_misshapen_segmentations(cascade_case):
    data_folder, previous_folder, previous = cascade_case
    (previous_folder / "a.b2nd").unlink()
    np.savez_compressed(previous_folder / "a.npz", seg=previous)  # nnU-Net v2's numpy-dataset format
    loader = NnUNetDataLoader(
        data_folder, ["a"], 1, (6, 10, 10), (6, 10, 10), LABELS, 0.0, seed=0, previous_stage_folder=previous_folder
    )
    assert np.array_equal(next(loader)["target"][0, 1].numpy(), previous)

    np.savez_compressed(previous_folder / "a.npz", seg=previous[:, :5])
    with pytest.raises(
        TrainingError,
        match=r"previous-stage segmentation has shape \(6, 5, 10\), the preprocessed "
        r"case \(6, 10, 10\)",
    ):
        next(loader)
    (previous_folder / "a.npz").unlink()
    with pytest.raises(TrainingError, match=r"a\.b2nd: previous-stage segmentation of case 'a' not found \(1 of 1"):
        NnUNetDataLoader(data_folder, ["a"], 1, (6, 10, 10), (6, 10, 10), LABELS, previous_stage_folder=previous_folder)
