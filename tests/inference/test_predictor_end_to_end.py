import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.cli.common import requested_cpu_bf16
from nnunetv2.cli.predict import _add_shared_args
from nnunetv2.exceptions import DatasetError, ImageIOError, InferenceError, NnUNetError
from nnunetv2.inference.predictor import nnUNetPredictor
from nnunetv2.utilities import precision
from tests.helpers.tiny_models import DIRECTION, ORIGIN, SPACING_XYZ
from tests.helpers.tiny_models import make_model_folder as _make_model_folder
from tests.helpers.tiny_models import write_case as _write_case

torch.set_num_threads(1)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return _make_model_folder(tmp_path_factory.mktemp("results") / "nnUNetTrainer__nnUNetPlans__3d_fullres")


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("input")
    _write_case(folder, "a", 0)
    _write_case(folder, "b", 1)
    return folder


def _predictor(model_folder, folds=(0,)):
    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False, cpu_bf16=False)
    predictor.initialize_from_trained_model_folder(model_folder, folds)
    return predictor


def test_predictions_keep_the_input_geometry_and_workers_change_nothing(model_folder, input_folder, tmp_path, caplog):
    predictor = _predictor(model_folder)
    written = predictor.predict_from_files(
        input_folder, tmp_path / "serial", num_processes_preprocessing=1, num_processes_segmentation_export=1
    )
    assert [Path(w).name for w in written] == ["a.nii.gz", "b.nii.gz"]
    assert (tmp_path / "serial" / "plans.json").is_file() and (tmp_path / "serial" / "dataset.json").is_file()
    record = json.loads((tmp_path / "serial" / "predict_from_raw_data_args.json").read_text())
    assert record["list_of_lists_or_source_folder"] == str(input_folder)
    assert record["num_processes_preprocessing"] == 1 and record["save_probabilities"] is False
    assert record["folds"] == [0] and record["model_folder"] == str(model_folder) and record["use_mirroring"]
    source = sitk.ReadImage(str(input_folder / "a_0000.nii.gz"))
    predicted = sitk.ReadImage(written[0])
    assert predicted.GetSize() == source.GetSize()
    assert np.allclose(predicted.GetSpacing(), SPACING_XYZ) and np.allclose(predicted.GetOrigin(), ORIGIN)
    assert np.allclose(predicted.GetDirection(), DIRECTION)
    seg = sitk.GetArrayFromImage(predicted)
    assert set(np.unique(seg)) <= {0, 1, 2} and np.all(seg[0] == 0)  # the zero margin is background

    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    image, properties = SimpleITKIO().read_images([input_folder / "a_0000.nii.gz", input_folder / "a_0001.nii.gz"])
    np.testing.assert_array_equal(predictor.predict_single_npy_array(image, properties), seg)

    predictor.allow_tqdm = True  # redirected (as under pytest): plain lines, one per case as its file is written
    with caplog.at_level(logging.INFO, logger="nnunetv2.utilities.progress"):
        parallel = predictor.predict_from_files(
            input_folder,
            tmp_path / "parallel",
            save_probabilities=True,
            num_processes_preprocessing=2,
            num_processes_segmentation_export=2,
        )
    lines = [r.getMessage().split(",")[0] for r in caplog.records if r.name == "nnunetv2.utilities.progress"]
    assert lines == ["predicting: 1/2 case(s)", "predicting: 2/2 case(s)"]
    for serial_file, parallel_file in zip(written, parallel):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(parallel_file)), sitk.GetArrayFromImage(sitk.ReadImage(serial_file))
        )
    assert (tmp_path / "parallel" / "b.npz").is_file() and (tmp_path / "parallel" / "b.pkl").is_file()


def test_folds_are_averaged_in_logit_space(model_folder):
    data = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 8, 20, 20)).astype(np.float32))
    both = _predictor(model_folder, (0, 1))
    assert both.mirror_axes == (0, 1, 2)
    single = [_predictor(model_folder, (f,)).predict_logits_from_preprocessed_data(data) for f in (0, 1)]
    torch.testing.assert_close(both.predict_logits_from_preprocessed_data(data), (single[0] + single[1]) / 2)


def test_bf16_prediction_stays_close_to_float32(model_folder, input_folder, tmp_path, caplog):
    data = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 8, 20, 20)).astype(np.float32))
    exact = _predictor(model_folder).predict_logits_from_preprocessed_data(data)
    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False, cpu_bf16=True)
    predictor.initialize_from_trained_model_folder(model_folder, (0,))
    approximate = predictor.predict_logits_from_preprocessed_data(data)
    assert approximate.dtype == torch.float32 and not torch.equal(approximate, exact)  # bfloat16 did run
    assert (approximate - exact).abs().max() < 0.05 * exact.abs().max()
    assert (approximate.argmax(0) == exact.argmax(0)).float().mean() > 0.95
    predictor.predict_from_files(
        input_folder, tmp_path / "bf16", num_processes_preprocessing=1, num_processes_segmentation_export=1
    )
    assert json.loads((tmp_path / "bf16" / "predict_from_raw_data_args.json").read_text())["cpu_bf16"] is True


@pytest.mark.parametrize(
    ("native", "requested", "expected"), [(True, None, True), (True, False, False), (False, None, False)]
)
def test_prediction_precision_follows_the_cpu_unless_told(monkeypatch, native, requested, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert nnUNetPredictor(device="cpu", cpu_bf16=requested).cpu_bf16 is expected


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--fp32"], False), (["--bf16"], True)])
def test_predict_cli_precision_flags(flags, expected):
    parser = argparse.ArgumentParser()
    _add_shared_args(parser)
    assert requested_cpu_bf16(parser.parse_args(["-i", "in", "-o", "out", *flags])) is expected
    with pytest.raises(SystemExit):
        parser.parse_args(["-i", "in", "-o", "out", "--bf16", "--fp32"])


def test_continue_prediction_skips_finished_cases(model_folder, input_folder, tmp_path):
    predictor = _predictor(model_folder)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.nii.gz").write_bytes(b"finished earlier")
    written = predictor.predict_from_files(
        input_folder, out, overwrite=False, num_processes_preprocessing=1, num_processes_segmentation_export=1
    )
    assert [Path(w).name for w in written] == ["b.nii.gz"]
    assert (out / "a.nii.gz").read_bytes() == b"finished earlier"
    part = predictor.predict_from_files(
        input_folder,
        tmp_path / "part",
        num_parts=2,
        part_id=1,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
    )
    assert [Path(w).name for w in part] == ["b.nii.gz"]


def test_model_folder_errors(model_folder, tmp_path):
    with pytest.raises(
        InferenceError,
        match="fold_3/checkpoint_final.pth: checkpoint of fold 3 not found \\(folds with checkpoint_final.pth: 0, 1\\)",
    ):
        _predictor(model_folder, (0, 3))
    with pytest.raises(
        InferenceError,
        match="checkpoint_best.pth: checkpoint of fold 0 not found \\(no fold has checkpoint_best.pth\\)",
    ):
        nnUNetPredictor(device="cpu").initialize_from_trained_model_folder(model_folder, (0,), "checkpoint_best.pth")
    with pytest.raises(InferenceError, match="nowhere: model folder not found"):
        _predictor(tmp_path / "nowhere")
    assert _predictor(model_folder, None).model.folds == [0, 1]


def test_bad_inputs_give_one_clear_error_and_keep_finished_cases(model_folder, tmp_path):
    predictor = _predictor(model_folder)
    run = dict(num_processes_preprocessing=1, num_processes_segmentation_export=1)

    pngs = tmp_path / "png"
    pngs.mkdir()
    (pngs / "a_0000.png").write_bytes(b"")
    with pytest.raises(InferenceError, match="no images ending in '.nii.gz' .*; found files ending in .png"):
        predictor.predict_from_files(pngs, tmp_path / "o1", **run)

    missing = tmp_path / "missing"
    _write_case(missing, "a", 0)
    _write_case(missing, "b", 1, num_channels=1)
    with pytest.raises(DatasetError, match="b_0001.nii.gz: channel 1 of case 'b' is missing"):
        predictor.predict_from_files(missing, tmp_path / "o2", **run)

    three = tmp_path / "three"
    _write_case(three, "a", 0, num_channels=3)
    with pytest.raises(DatasetError, match="case .* has 3 channel files, but the dataset has 2 channel"):
        predictor.predict_from_files(three, tmp_path / "o3", **run)

    single = tmp_path / "single"
    _write_case(single, "a", 0, num_channels=1)
    with pytest.raises(NnUNetError, match="case 'a': the image has 1 channel\\(s\\) but configuration"):
        predictor.predict_from_files(single, tmp_path / "o4", **run)

    mismatch = tmp_path / "mismatch"
    _write_case(mismatch, "a", 0)
    _write_case(mismatch, "b", 1, spacing_of_channel_1=(1.0, 1.0, 3.0))
    with pytest.raises(ImageIOError, match="case 'b': .*b_0001.nii.gz: spacing .* differs"):
        predictor.predict_from_files(mismatch, tmp_path / "o5", **run)
    assert sorted(p.name for p in (tmp_path / "o5").iterdir()) == [
        "a.nii.gz",
        "dataset.json",
        "plans.json",
        "predict_from_raw_data_args.json",
    ]
    assert sitk.ReadImage(str(tmp_path / "o5" / "a.nii.gz")).GetSize() == (22, 20, 10)


def test_cascade_uses_previous_stage_predictions(tmp_path, model_folder, input_folder):
    previous = tmp_path / "lowres"
    _predictor(model_folder).predict_from_files(
        input_folder, previous, num_processes_preprocessing=1, num_processes_segmentation_export=1
    )
    cascade = _predictor(_make_model_folder(tmp_path / "cascade", num_folds=1, previous_stage="3d_lowres"))
    assert cascade.model.num_input_channels == 4
    with pytest.raises(InferenceError, match="'3d_fullres' is a cascade stage: give the predictions of '3d_lowres'"):
        cascade.predict_from_files(input_folder, tmp_path / "o")
    written = cascade.predict_from_files(
        input_folder,
        tmp_path / "o",
        folder_with_segs_from_prev_stage=previous,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
    )
    assert len(written) == 2
    # the previous stage's labels are input channels: other labels there change the prediction's logits
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    image, properties = SimpleITKIO().read_images([input_folder / "a_0000.nii.gz", input_folder / "a_0001.nii.gz"])
    ones = np.ones((1, *image.shape[1:]), dtype=np.uint8)
    _, p_zero = cascade.predict_single_npy_array(image, properties, 0 * ones, None, True)
    _, p_ones = cascade.predict_single_npy_array(image, properties, ones, None, True)
    assert not np.allclose(p_zero, p_ones)
    (previous / "b.nii.gz").unlink()
    with pytest.raises(InferenceError, match="b.nii.gz: previous-stage prediction of case 'b' not found"):
        cascade.predict_from_files(input_folder, tmp_path / "o", folder_with_segs_from_prev_stage=previous)


def test_predict_clis(model_folder, input_folder, tmp_path):
    results = tmp_path / "nnUNet_results"
    (results / "Dataset990_Tiny").mkdir(parents=True)
    os.symlink(model_folder, results / "Dataset990_Tiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres")
    env = dict(os.environ, nnUNet_results=str(results), nnUNet_raw=str(tmp_path), nnUNet_preprocessed=str(tmp_path))
    common = ["-npp", "1", "-nps", "1", "-device", "cpu", "--disable_progress_bar", "--disable_tta"]
    done = subprocess.run(
        [
            BIN / "nnUNetv2_predict",
            "-i",
            input_folder,
            "-o",
            tmp_path / "out",
            "-d",
            "990",
            "-c",
            "3d_fullres",
            "-f",
            "0",
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "a.nii.gz").is_file() and (tmp_path / "out" / "b.nii.gz").is_file()
    recorded = json.loads((tmp_path / "out" / "predict_from_raw_data_args.json").read_text())
    assert recorded["cpu_bf16"] is precision.cpu_has_native_bf16()  # the CPU's default precision
    failed = subprocess.run(
        [
            BIN / "nnUNetv2_predict_from_modelfolder",
            "-i",
            input_folder,
            "-o",
            tmp_path / "o2",
            "-m",
            model_folder,
            "-f",
            "0",
            "7",
            *common,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: ") and "checkpoint of fold 7 not found" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
