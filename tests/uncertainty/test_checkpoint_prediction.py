"""nnUNetv2_predict_checkpoints with a tiny hand-made model: layout, reuse of the predictor, temperature, errors."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.cli.uncertainty import predict_checkpoints_entry, uncertainty_entry
from nnunetv2.exceptions import InferenceError
from nnunetv2.formats.checkpoint_index import save_checkpoint_index
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.inference.predictor import nnUNetPredictor
from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble
from tests.helpers.tiny_models import DIRECTION, IMAGE_SHAPE, ORIGIN, SPACING_XYZ, make_model_folder, write_case

torch.set_num_threads(1)
CHECKPOINTS = ["checkpoint_cycle1_epoch2.pth", "checkpoint_cycle1_epoch3.pth", "checkpoint_cycle2_epoch6.pth"]
FAST = dict(device="cpu", num_processes_preprocessing=1, show_progress=False)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder = make_model_folder(
        tmp_path_factory.mktemp("results") / "nnUNetTrainerCyclicLR__nnUNetPlans__3d_fullres",
        num_folds=2,
        checkpoint_names=CHECKPOINTS,
    )
    for fold in (0, 1):
        save_checkpoint_index(folder / f"fold_{fold}", {"checkpoints": [{"file": name} for name in CHECKPOINTS]})
    return folder


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("input")
    for seed, case_id in enumerate(("a", "b")):
        write_case(folder, case_id, seed)
    return folder


@pytest.fixture(scope="module")
def predicted(model_folder, input_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("predicted")
    predict_checkpoint_ensemble(input_folder, output, model_folder, **FAST)
    return output


def _probabilities(path: Path) -> np.ndarray:
    with np.load(path) as content:
        return content["probabilities"]


def test_every_checkpoint_predicts_every_case(predicted, model_folder, input_folder):
    run = json.loads((predicted / "checkpoint_predictions.json").read_text())
    assert run["cases"] == ["a", "b"] and run["configuration"] == "3d_fullres" and run["temperature"] == 1.0
    assert [(m["fold"], m["checkpoint"]) for m in run["members"]] == [(f, c) for f in (0, 1) for c in CHECKPOINTS]
    assert set(run["seconds"]) == {"preprocessing"} | {m["folder"] for m in run["members"]}
    for member in run["members"]:
        folder = predicted / member["folder"]
        assert folder == predicted / "checkpoints" / f"fold_{member['fold']}" / member["checkpoint"][:-4]
        assert sorted(p.name for p in folder.iterdir()) == [
            "a.npz",
            "a.pkl",
            "b.npz",
            "b.pkl",
            "dataset.json",
            "plans.json",
        ]
        probabilities = _probabilities(folder / "a.npz")
        assert probabilities.dtype == np.float16 and probabilities.shape == (3, *IMAGE_SHAPE)
        np.testing.assert_allclose(probabilities.astype(np.float32).sum(0), 1, atol=3e-3)
    assert not list(predicted.glob(".preprocessed_*"))  # the scratch copies are gone

    # each member's probabilities are what the ordinary predictor gives with that checkpoint alone
    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model_folder, [1], CHECKPOINTS[2])
    image, properties = SimpleITKIO().read_images(sorted(input_folder.glob("b_*.nii.gz")))
    _, expected = predictor.predict_single_npy_array(image, properties, save_or_return_probabilities=True)
    stored = _probabilities(predicted / "checkpoints" / "fold_1" / "checkpoint_cycle2_epoch6" / "b.npz")
    np.testing.assert_allclose(stored.astype(np.float32), expected, atol=1e-3)
    other = _probabilities(predicted / "checkpoints" / "fold_1" / "checkpoint_cycle1_epoch2" / "b.npz")
    assert np.abs(other.astype(np.float32) - expected).max() > 0.01  # the checkpoints really differ


def test_temperature_softens_probabilities_but_keeps_labels(model_folder, input_folder, predicted, tmp_path):
    predict_checkpoint_ensemble(
        input_folder, tmp_path, model_folder, folds=[0], checkpoint_names=[CHECKPOINTS[0]], temperature=4.0, **FAST
    )
    warm = _probabilities(tmp_path / "checkpoints" / "fold_0" / "checkpoint_cycle1_epoch2" / "a.npz")
    cold = _probabilities(predicted / "checkpoints" / "fold_0" / "checkpoint_cycle1_epoch2" / "a.npz")
    top_two = np.sort(cold.astype(np.float32), axis=0)[-2:]
    clear = top_two[1] - top_two[0] > 0.01  # float16 storage may flip near-ties
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(warm.argmax(0)[clear], cold.argmax(0)[clear])
    assert warm.max(0).astype(np.float32).mean() < cold.max(0).astype(np.float32).mean()
    with pytest.raises(InferenceError, match=r"the softmax temperature \(-temperature\) must be a number > 0, got 0"):
        nnUNetPredictor(device="cpu", temperature=0)


def test_continue_prediction_fills_only_the_gaps(model_folder, input_folder, tmp_path):
    predict_checkpoint_ensemble(input_folder, tmp_path, model_folder, folds=[0], **FAST)
    member = tmp_path / "checkpoints" / "fold_0" / "checkpoint_cycle1_epoch3"
    (member / "b.npz").unlink()
    os.utime(member / "a.npz", (1, 1))
    predict_checkpoint_ensemble(input_folder, tmp_path, model_folder, folds=[0], overwrite=False, **FAST)
    assert (member / "b.npz").is_file() and (member / "a.npz").stat().st_mtime == 1


def test_prediction_errors(model_folder, input_folder, tmp_path):
    def fails(message, **kwargs):
        with pytest.raises(InferenceError, match=message):
            predict_checkpoint_ensemble(
                input_folder, tmp_path / "out", kwargs.pop("model", model_folder), **kwargs, **FAST
            )

    fails("nowhere: model folder not found", model=tmp_path / "nowhere")
    fails(
        "fold_1/checkpoint_best.pth: checkpoint of fold 1 not found",
        checkpoint_names=["checkpoint_best.pth"],
        folds=[1],
    )
    fails(r"fold_3/checkpoint_ensemble.json: not found; train the fold with -tr nnUNetTrainerCyclicLR", folds=[3])
    plain = make_model_folder(tmp_path / "plain", num_folds=1)
    fails("no fold_N folder holds a checkpoint_ensemble.json", model=plain)
    save_checkpoint_index(plain / "fold_0", {"checkpoints": ["checkpoint_final.pth"]})
    fails(r"checkpoint_ensemble.json: expected a 'checkpoints' list", model=plain)
    save_checkpoint_index(plain / "fold_0", {"checkpoints": [{"file": "checkpoint_cycle1_epoch9.pth"}]})
    fails("fold_0/checkpoint_cycle1_epoch9.pth: checkpoint of fold 0 not found", model=plain)
    save_checkpoint_index(plain / "fold_0", {"checkpoints": []})
    fails("lists no checkpoints yet", model=plain)
    fails("checkpoint is listed twice", checkpoint_names=["checkpoint_final.pth"] * 2, model=plain)


def test_commands_from_images_to_uncertainty_maps(model_folder, input_folder, tmp_path, monkeypatch, capsys, caplog):
    results = tmp_path / "nnUNet_results"
    (results / "Dataset990_Tiny").mkdir(parents=True)
    os.symlink(model_folder, results / "Dataset990_Tiny" / model_folder.name)
    monkeypatch.setenv("nnUNet_results", str(results))
    common = ["-device", "cpu", "-npp", "1", "--disable_progress_bar", "--disable_tta"]
    predict_checkpoints_entry(
        ["-i", str(input_folder), "-o", str(tmp_path / "p"), "-d", "990", "-c", "3d_fullres", "-f", "1", *common]
    )
    assert "checkpoint_predictions.json" in capsys.readouterr().out
    labels = tmp_path / "labels"
    labels.mkdir()
    for case_id in ("a", "b"):
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(input_folder / f"{case_id}_0000.nii.gz"))) > 100
        image = sitk.GetImageFromArray(reference.astype(np.uint8))
        image.CopyInformation(sitk.ReadImage(str(input_folder / f"{case_id}_0000.nii.gz")))
        sitk.WriteImage(image, str(labels / f"{case_id}.nii.gz"))
    uncertainty_entry(
        ["-i", str(tmp_path / "p"), "-o", str(tmp_path / "u"), "--labels", str(labels), "--disable_progress_bar"]
    )
    out = capsys.readouterr().out
    assert "2 case(s)" in out and "Spearman rho (Dice vs score) = nan, p = nan, n = 2 case(s)" in out
    assert out.count("Spearman") == 1  # printed once: the library only records it, it does not log it too
    assert not [r for r in caplog.records if "Spearman" in r.getMessage() and r.levelno >= logging.INFO]
    for path in (tmp_path / "u" / "a.nii.gz", tmp_path / "u" / "uncertainty_maps" / "a.nii.gz"):
        written, source = sitk.ReadImage(str(path)), sitk.ReadImage(str(input_folder / "a_0000.nii.gz"))
        assert written.GetSize() == source.GetSize()
        assert np.allclose(written.GetSpacing(), SPACING_XYZ) and np.allclose(written.GetOrigin(), ORIGIN)
        assert np.allclose(written.GetDirection(), DIRECTION)
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "u" / "uncertainty_maps" / "b.nii.gz"))).max() <= 1000

    with pytest.raises(SystemExit) as exit_info:
        predict_checkpoints_entry(
            [
                "-i",
                str(input_folder),
                "-o",
                str(tmp_path / "x"),
                "-d",
                "990",
                "-c",
                "3d_fullres",
                "-tr",
                "nnUNetTrainer",
                *common,
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert "nnUNetTrainer__nnUNetPlans__3d_fullres: model folder not found" in err
    with pytest.raises(SystemExit) as exit_info:
        predict_checkpoints_entry(["-i", str(input_folder), "-o", str(tmp_path / "x"), *common])
    assert exit_info.value.code == 2
    assert "give the model folder with -m, or the dataset and configuration with -d and -c" in capsys.readouterr().err
