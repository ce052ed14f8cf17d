"""nnUNetv2_scribble_pseudolabels / make_pseudo_labels_for_folder: files, geometry, summary and bad inputs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nnunetv2.cli.scribble_loop import scribble_pseudolabels_entry
from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.imageio.image_files import write_float_map
from nnunetv2.imageio.nibabel_reader_writer import NibabelIO, NibabelIOWithReorient
from nnunetv2.imageio.registry import reader_writer_for_ending
from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles
from nnunetv2.scribble_loop.pseudo_label_folder import make_pseudo_labels_for_folder
from nnunetv2.utilities.file_io import load_json


def _wrong_probabilities(reference: np.ndarray, num_classes: int) -> np.ndarray:
    """Softmax of blurred one-hot labels after shifting class 1 sideways: a plausible, partly wrong network."""
    labels = np.where(reference < num_classes, reference, 0)
    shifted = np.roll(labels == 1, 3, axis=-1)
    wrong = np.where(labels == 1, 0, labels)
    wrong[shifted] = 1
    logits = np.stack([4.0 * ndimage.gaussian_filter((wrong == c).astype(np.float32), 1.0) for c in range(num_classes)])
    probabilities = np.exp(logits)
    return (probabilities / probabilities.sum(0)).astype(np.float32)


def _make_inputs(root: Path, shape, file_ending: str) -> dict[str, Path]:
    """A synthetic dataset with an ignore label, probability .npz files and simulated correction scribbles."""
    dataset = root / "Dataset950_Loop"
    generate_synthetic_dataset(dataset, num_cases=2, shape=shape, file_ending=file_ending, ignore_label=True)
    reader_writer = reader_writer_for_ending(file_ending)()
    probabilities_folder, scribbles_folder = root / "probabilities", root / "scribbles"
    probabilities_folder.mkdir()
    scribbles_folder.mkdir()
    for case in ("case_000", "case_001"):
        reference, properties = reader_writer.read_seg(dataset / "labelsTr" / f"{case}{file_ending}")
        probabilities = _wrong_probabilities(reference[0], 3)
        np.savez_compressed(probabilities_folder / f"{case}.npz", probabilities=probabilities)
        scribbles = simulate_correction_scribbles(reference[0], probabilities.argmax(0), 3, seed=0)
        reader_writer.write_seg(scribbles, scribbles_folder / f"{case}{file_ending}", properties)
    return {
        "dataset": dataset,
        "images": dataset / "imagesTr",
        "labels": dataset / "labelsTr",
        "probabilities": probabilities_folder,
        "scribbles": scribbles_folder,
    }


@pytest.fixture(scope="module")
def inputs_3d(tmp_path_factory) -> dict[str, Path]:
    """Read-only 3D NIfTI inputs (2 cases of (8, 24, 24) at spacing (3, 1, 1)); copy before changing."""
    return _make_inputs(tmp_path_factory.mktemp("loop3d"), (8, 24, 24), ".nii.gz")


def _copy(inputs: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    copied = {}
    for key, folder in inputs.items():
        copied[key] = tmp_path / key
        shutil.copytree(folder, copied[key])
    return copied


def _run_cli(monkeypatch, *args) -> int:
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_scribble_pseudolabels", *map(str, args)])
    try:
        scribble_pseudolabels_entry()
    except SystemExit as e:
        return e.code
    return 0


def test_3d_folder_run_writes_labels_and_confidence_in_the_image_geometry(inputs_3d, tmp_path):
    out = tmp_path / "out"
    summary = make_pseudo_labels_for_folder(
        inputs_3d["images"],
        inputs_3d["probabilities"],
        inputs_3d["scribbles"],
        out,
        dataset=inputs_3d["dataset"],
        device="cpu",
        progress=False,
    )
    assert sorted(summary["cases"]) == ["case_000", "case_001"]
    assert summary["parameters"]["threshold"] == 10.0
    assert summary["parameters"]["recalibration_sigma"] == 20.0 and summary["parameters"]["recalibration_prior"] == 60.0
    assert summary["parameters"]["recalibration_scale"] == 2.0
    assert load_json(out / "summary.json") == summary
    total = 0
    for case in ("case_000", "case_001"):
        image = sitk.ReadImage(str(inputs_3d["images"] / f"{case}_0000.nii.gz"))
        label = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        confidence = sitk.ReadImage(str(out / "confidence" / f"{case}_confidence.nii.gz"))
        for written in (label, confidence):
            assert written.GetSize() == image.GetSize()
            np.testing.assert_allclose(written.GetSpacing(), image.GetSpacing(), atol=1e-5)
            np.testing.assert_allclose(written.GetOrigin(), image.GetOrigin(), atol=1e-5)
            np.testing.assert_allclose(written.GetDirection(), image.GetDirection(), atol=1e-6)
        confidence_array = sitk.GetArrayFromImage(confidence)
        assert confidence.GetPixelID() == sitk.sitkFloat32
        assert confidence_array.min() >= 0 and confidence_array.max() <= 1

        pseudo = sitk.GetArrayFromImage(label)
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(inputs_3d["labels"] / f"{case}.nii.gz")))
        prediction = np.load(inputs_3d["probabilities"] / f"{case}.npz")["probabilities"].argmax(0)
        entry = summary["cases"][case]
        assert entry["changed_voxels"] == int((pseudo != prediction).sum()) > 0
        assert sum(entry["changes"].values()) == entry["changed_voxels"]
        assert entry["unannotated_value"] == 3 and entry["scribbled_voxels"] > 0
        annotated = reference != 3
        assert ((pseudo != reference) & annotated).sum() < ((prediction != reference) & annotated).sum()
        total += entry["changed_voxels"]
    assert summary["total_changed_voxels"] == total


def test_summary_reports_per_class_change_and_low_confidence_and_flags_a_shrunk_class(inputs_3d, tmp_path, caplog):
    inputs = _copy(inputs_3d, tmp_path)
    reader_writer = reader_writer_for_ending(".nii.gz")()
    # case_001: a big background stroke over most of class 1 (as a careless person might draw): class 1 shrinks
    reference, properties = reader_writer.read_seg(inputs["labels"] / "case_001.nii.gz")
    prediction = np.load(inputs["probabilities"] / "case_001.npz")["probabilities"].argmax(0)
    scribbles = np.full(reference.shape[1:], 3, dtype=np.uint8)
    scribbles[prediction == 1] = 0
    reader_writer.write_seg(scribbles, inputs["scribbles"] / "case_001.nii.gz", properties)
    out = tmp_path / "out"
    summary = make_pseudo_labels_for_folder(
        inputs["images"], inputs["probabilities"], inputs["scribbles"], out, dataset=inputs["dataset"], device="cpu",
        progress=False,
    )  # fmt: skip
    pseudo = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "case_001.nii.gz")))
    confidence = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "confidence" / "case_001_confidence.nii.gz")))
    entry = summary["cases"]["case_001"]
    for c in range(3):
        counts = entry["per_class"][str(c)]
        assert counts["prediction_voxels"] == int((prediction == c).sum())
        assert counts["pseudo_label_voxels"] == int((pseudo == c).sum())
        assert (
            counts["gained_voxels"] - counts["lost_voxels"]
            == counts["pseudo_label_voxels"] - counts["prediction_voxels"]
        )
        assert counts["low_confidence_voxels"] == int(((pseudo == c) & (confidence < 0.5)).sum())
    assert entry["per_class"]["1"]["change_fraction"] < -0.5
    assert entry["shrunk_classes"] == ["1"] and entry["per_class"]["1"]["shrunk"]
    assert summary["cases"]["case_000"]["shrunk_classes"] == []
    assert entry["low_confidence_fraction"] == pytest.approx(float((confidence < 0.5).mean()))
    # over all cases the counts add up, and the flag follows the summed change
    total = summary["per_class"]["1"]
    for key in ("prediction_voxels", "pseudo_label_voxels", "lost_voxels"):
        assert total[key] == sum(c["per_class"]["1"][key] for c in summary["cases"].values())
    assert total["change_fraction"] == pytest.approx(
        (total["pseudo_label_voxels"] - total["prediction_voxels"]) / total["prediction_voxels"]
    )
    assert total["shrunk"] == (total["change_fraction"] < -0.1) == ("1" in summary["shrunk_classes"])
    assert "case_001: the pseudo label has" in caplog.text and "fewer voxels of class 1" in caplog.text


def test_2d_png_run_without_dataset_and_a_case_without_scribbles(tmp_path, monkeypatch, capsys):
    inputs = _make_inputs(tmp_path, (32, 32), ".png")
    (inputs["scribbles"] / "case_001.png").unlink()
    out = tmp_path / "out"
    assert (
        _run_cli(
            monkeypatch,
            "-i",
            inputs["images"],
            "-p",
            inputs["probabilities"],
            "-s",
            inputs["scribbles"],
            "-o",
            out,
            "-device",
            "cpu",
            "--quiet",
            "--threshold",
            "8",
            "--rule",
            "published",
            "--resolved_stroke_agreement",
            "0.7",
            "--support_fraction",
            "0.5",
            "--supported_threshold",
            "50",
            "--recalibration_sigma",
            "6",
            "--recalibration_prior",
            "2",
            "--recalibration_scale",
            "1.5",
        )
        == 0
    )
    assert "wrote 2 pseudo labels" in capsys.readouterr().out
    summary = load_json(out / "summary.json")
    assert summary["parameters"]["threshold"] == 8.0
    assert summary["parameters"]["rule"] == "published" and summary["parameters"]["resolved_stroke_agreement"] == 0.7
    assert summary["parameters"]["support_fraction"] == 0.5 and summary["parameters"]["supported_threshold"] == 50.0
    assert summary["parameters"]["recalibration_sigma"] == 6.0 and summary["parameters"]["recalibration_prior"] == 2.0
    assert summary["parameters"]["recalibration_scale"] == 1.5
    assert summary["cases"]["case_001"]["scribbled_voxels"] == 0
    probabilities = np.load(inputs["probabilities"] / "case_001.npz")["probabilities"]
    from PIL import Image

    unscribbled = np.asarray(Image.open(out / "case_001.png"))
    assert np.array_equal(unscribbled, probabilities.argmax(0)[0])
    confidence = sitk.ReadImage(str(out / "confidence" / "case_000_confidence.nii.gz"))
    assert confidence.GetDimension() == 2 and confidence.GetSize() == (32, 32)
    assert confidence.GetSpacing() == (1.0, 1.0)


@pytest.mark.parametrize("reader_writer", [NibabelIO, NibabelIOWithReorient])
def test_confidence_map_of_a_nibabel_read_image_matches_the_image_file(inputs_3d, tmp_path, reader_writer):
    image_file = inputs_3d["images"] / "case_000_0000.nii.gz"
    image, properties = reader_writer().read_images([image_file])
    low, high = image.min(), image.max()
    write_float_map((image[0] - low) / (high - low), tmp_path / "c_confidence.nii.gz", properties)
    read_back, read_properties = reader_writer().read_images([tmp_path / "c_confidence.nii.gz"])
    np.testing.assert_allclose(read_back[0], (image[0] - low) / (high - low), atol=1e-6)
    np.testing.assert_allclose(
        read_properties["nibabel_stuff"]["original_affine"], properties["nibabel_stuff"]["original_affine"], atol=1e-4
    )
    # voxel by voxel aligned with the image file, also for a reader that does not reorient
    plain_image, _ = NibabelIO().read_images([image_file])
    plain_confidence, _ = NibabelIO().read_images([tmp_path / "c_confidence.nii.gz"])
    np.testing.assert_allclose(plain_confidence[0], (plain_image[0] - low) / (high - low), atol=1e-6)


def _fails_with(monkeypatch, capsys, inputs, message, *extra) -> None:
    code = _run_cli(
        monkeypatch,
        "-i",
        inputs["images"],
        "-p",
        inputs["probabilities"],
        "-s",
        inputs["scribbles"],
        "-o",
        inputs["images"].parent / "out",
        "-d",
        inputs["dataset"],
        "-device",
        "cpu",
        "--quiet",
        *extra,
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err, err


def test_missing_probabilities_are_a_clear_error(inputs_3d, tmp_path, monkeypatch, capsys):
    inputs = _copy(inputs_3d, tmp_path)
    (inputs["probabilities"] / "case_001.npz").unlink()
    _fails_with(monkeypatch, capsys, inputs, "case_001.npz: probabilities of case 'case_001' not found")
    assert not (tmp_path / "out").exists()  # checked before any case is written


def test_probabilities_of_the_wrong_shape_or_class_count_are_clear_errors(inputs_3d, tmp_path, monkeypatch, capsys):
    inputs = _copy(inputs_3d, tmp_path)
    np.savez(inputs["probabilities"] / "case_000.npz", probabilities=np.full((3, 8, 24, 20), 1 / 3, np.float32))
    _fails_with(
        monkeypatch, capsys, inputs, "probabilities of shape [3, 8, 24, 20] do not match the image shape [8, 24, 24]"
    )
    np.savez(inputs["probabilities"] / "case_000.npz", probabilities=np.full((2, 8, 24, 24), 0.5, np.float32))
    _fails_with(monkeypatch, capsys, inputs, "2 probability channels, but the dataset has 3 labels")
    np.savez(inputs["probabilities"] / "case_000.npz", logits=np.zeros((3, 8, 24, 24), np.float32))
    _fails_with(monkeypatch, capsys, inputs, "has no 'probabilities' array (found: logits)")


def test_bad_scribble_files_are_clear_errors(inputs_3d, tmp_path, monkeypatch, capsys):
    inputs = _copy(inputs_3d, tmp_path)
    scribble_file = inputs["scribbles"] / "case_000.nii.gz"
    original = sitk.ReadImage(str(scribble_file))
    values = sitk.GetArrayFromImage(original)
    values[0, 0, 0] = 5
    bad = sitk.GetImageFromArray(values)
    bad.CopyInformation(original)
    sitk.WriteImage(bad, str(scribble_file))
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "case 'case_000': pseudo labels: scribbles contain value(s) [5] that "
        "are neither a class (0..2) nor the unannotated value 3",
    )
    sitk.WriteImage(sitk.GetImageFromArray(values[:, :20]), str(scribble_file))
    _fails_with(monkeypatch, capsys, inputs, "scribbles of shape [8, 20, 24] do not match the image shape [8, 24, 24]")
    shutil.copy(inputs["scribbles"] / "case_001.nii.gz", inputs["scribbles"] / "case_009.nii.gz")
    _fails_with(monkeypatch, capsys, inputs, "case_009.nii.gz: scribble file of no case in the images folder")


def test_bad_flags_are_clear_errors(inputs_3d, monkeypatch, capsys, tmp_path):
    inputs = _copy(inputs_3d, tmp_path)
    _fails_with(monkeypatch, capsys, inputs, "threshold must be a number > 0, got -1.0", "--threshold", "-1")
    _fails_with(
        monkeypatch, capsys, inputs, "supported_threshold must be a number > 0, got 0.0", "--supported_threshold", "0"
    )
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "recalibration_sigma must be a number >= 0, got -1.0",
        "--recalibration_sigma",
        "-1",
    )
    _fails_with(
        monkeypatch, capsys, inputs, "recalibration_scale must be a number > 0, got 0.0", "--recalibration_scale", "0"
    )
    _fails_with(monkeypatch, capsys, inputs, "unannotated value 2 is also class 2", "--unannotated", "2")
    _fails_with(
        monkeypatch, capsys, inputs, "rule must be one of published, network_aware, got 'paper'", "--rule", "paper"
    )
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "resolved_stroke_agreement must be a number in (0, 1], got 0.0",
        "--resolved_stroke_agreement",
        "0",
    )
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "resolved_stroke_agreement must be a number in (0, 1], got 2.0",
        "--resolved_stroke_agreement",
        "2",
    )


def test_dataset_argument_accepts_id_name_file_or_folder(inputs_3d, nnunet_env, tmp_path):
    from nnunetv2.exceptions import DatasetNotFoundError
    from nnunetv2.scribble_loop.pseudo_label_folder import _dataset_labels, _load_dataset_json

    shutil.copy(inputs_3d["dataset"] / "dataset.json", tmp_path / "dataset.json")
    (nnunet_env["nnUNet_raw"] / "Dataset950_Loop").mkdir()
    shutil.copy(inputs_3d["dataset"] / "dataset.json", nnunet_env["nnUNet_raw"] / "Dataset950_Loop")
    for dataset in ("950", "Dataset950_Loop", tmp_path / "dataset.json", tmp_path):
        labels = _dataset_labels(_load_dataset_json(dataset))
        assert (labels.all_labels, labels.ignore_label) == ([0, 1, 2], 3)
    with pytest.raises(DatasetNotFoundError, match="no dataset with id 951"):
        _load_dataset_json("951")
    (nnunet_env["nnUNet_preprocessed"] / "Dataset952_Empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="Dataset952_Empty: no dataset.json in"):
        _load_dataset_json("952")


def test_previous_pseudo_labels_are_kept_where_the_new_network_is_unsure(inputs_3d, tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    make_pseudo_labels_for_folder(
        inputs_3d["images"],
        inputs_3d["probabilities"],
        inputs_3d["scribbles"],
        first,
        dataset=inputs_3d["dataset"],
        device="cpu",
        progress=False,
    )
    # a new network that prefers another class than the old one everywhere, but only with 0.4 (others 0.3)
    unsure = tmp_path / "unsure"
    unsure.mkdir()
    for case in ("case_000", "case_001"):
        old = np.load(inputs_3d["probabilities"] / f"{case}.npz")["probabilities"]
        other = np.roll(np.eye(3, dtype=np.float32)[old.argmax(0)].transpose(3, 0, 1, 2), 1, axis=0)
        np.savez_compressed(unsure / f"{case}.npz", probabilities=(0.3 + 0.1 * other).astype(np.float32))
    code = _run_cli(
        monkeypatch,
        "-i",
        inputs_3d["images"],
        "-p",
        unsure,
        "-s",
        inputs_3d["scribbles"],
        "-o",
        second,
        "-d",
        inputs_3d["dataset"],
        "-device",
        "cpu",
        "--quiet",
        "--previous",
        first,
        "--update_min_probability",
        "0.5",
    )
    assert code == 0, capsys.readouterr().err
    summary = load_json(second / "summary.json")
    assert summary["parameters"]["update_min_probability"] == 0.5
    for case in ("case_000", "case_001"):
        before = sitk.GetArrayFromImage(sitk.ReadImage(str(first / f"{case}.nii.gz")))
        after = sitk.GetArrayFromImage(sitk.ReadImage(str(second / f"{case}.nii.gz")))
        assert np.array_equal(before, after)  # no new class reaches 0.5: no voxel changes
        kept = summary["cases"][case]["kept_previous_voxels"]
        assert kept > before.size // 2
        confidence = {
            folder: sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "confidence" / f"{case}_confidence.nii.gz")))
            for folder in (first, second)
        }
        assert np.isclose(confidence[first], confidence[second]).sum() >= kept  # kept voxels keep their confidence


def test_bad_previous_pseudo_label_options_are_clear_errors(inputs_3d, tmp_path, monkeypatch, capsys):
    inputs = _copy(inputs_3d, tmp_path)
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "update_min_probability needs the previous pseudo labels (--previous)",
        "--update_min_probability",
        "0.5",
    )
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "nowhere: previous pseudo-label folder not found",
        "--previous",
        tmp_path / "nowhere",
    )
    previous = tmp_path / "previous"
    make_pseudo_labels_for_folder(
        inputs["images"],
        inputs["probabilities"],
        inputs["scribbles"],
        previous,
        dataset=inputs["dataset"],
        device="cpu",
        progress=False,
    )
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "update_min_probability must be a number in [0, 1], got 1.5",
        "--previous",
        previous,
        "--update_min_probability",
        "1.5",
    )
    (previous / "confidence" / "case_001_confidence.nii.gz").unlink()
    _fails_with(
        monkeypatch,
        capsys,
        inputs,
        "case_001_confidence.nii.gz: previous pseudo label or confidence of case 'case_001' not found",
        "--previous",
        previous,
    )
