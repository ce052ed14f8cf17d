"""Prediction faults: non-finite inputs, refused flags, an output folder that is the input, a full disk.

Each ends in one ``error:`` line with exit code 1, and what an earlier run wrote stays as it was.
"""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.cli.predict import predict_from_modelfolder_entry
from tests.helpers.tiny_models import make_model_folder, write_case
from tests.reliability.conftest import assert_one_error_line, rewrite, run_entry

torch.set_num_threads(1)
INLINE = ("-f", "0", "-npp", "1", "-nps", "1", "--disable_tta", "--disable_progress_bar", "-device", "cpu")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny model for NRRD files: ITK's NIfTI reader turns NaN and inf into 0, NRRD keeps them."""
    folder = make_model_folder(tmp_path_factory.mktemp("results") / "nnUNetTrainer__nnUNetPlans__3d_fullres", 1)
    dataset_json = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps(dataset_json | {"file_ending": ".nrrd"}))
    return folder


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    write_case(folder, "a", 0)
    write_case(folder, "b", 1)
    for path in sorted(folder.glob("*.nii.gz")):
        sitk.WriteImage(sitk.ReadImage(str(path)), str(path).replace(".nii.gz", ".nrrd"))
        path.unlink()
    return folder


def _predict(monkeypatch, capsys, model_folder, inputs, output, *extra):
    return run_entry(
        monkeypatch, capsys, predict_from_modelfolder_entry, "-i", str(inputs), "-o", str(output), "-m",
        str(model_folder), *INLINE, *extra,
    )  # fmt: skip


@pytest.mark.parametrize(("value", "kind"), [(np.inf, "inf"), (-np.inf, "inf"), (np.nan, "NaN")])
def test_a_non_finite_voxel_is_refused_naming_the_case(
    model_folder, inputs, tmp_path, monkeypatch, capsys, value, kind
):
    def poison(array):
        array = array.copy()
        array[4, 10, 10] = value
        return array

    rewrite(inputs / "b_0001.nrrd", poison)
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out")
    assert_one_error_line(code, stderr, "case 'b':", f"image channel 1 contains {kind} values (1 voxel(s))")
    assert (tmp_path / "out" / "a.nrrd").is_file()  # the case before it is complete
    assert not (tmp_path / "out" / "b.nrrd").exists()


def test_a_refused_run_leaves_the_previous_call_record(model_folder, inputs, tmp_path, monkeypatch, capsys):
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out")
    assert code == 0, stderr
    record = (tmp_path / "out" / "predict_from_raw_data_args.json").read_bytes()
    predictions = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.nrrd")}
    for flag, value, message in [
        ("-step_size", "0", "tile_step_size (-step_size) must be a number in (0, 1], got 0.0"),
        ("-step_size", "1.5", "must be a number in (0, 1], got 1.5"),
        ("-temperature", "0", "softmax temperature (-temperature) must be a number > 0, got 0.0"),
        ("-npp", "-1", "num_processes_preprocessing (-npp) must be an integer >= 0, got -1"),
        ("-part_id", "3", "part_id must be in 0..num_parts-1"),
    ]:
        code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out", flag, value)
        assert_one_error_line(code, stderr, message)
        assert (tmp_path / "out" / "predict_from_raw_data_args.json").read_bytes() == record
        assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.nrrd")} == predictions


def test_the_output_folder_cannot_be_the_input_folder_or_a_file(model_folder, inputs, tmp_path, monkeypatch, capsys):
    before = sorted(p.name for p in inputs.iterdir())
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, inputs / ".." / "in")
    assert_one_error_line(code, stderr, "the output folder (-o) is the input folder (-i)")
    assert sorted(p.name for p in inputs.iterdir()) == before

    (tmp_path / "a_file").write_text("keep me")
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "a_file")
    assert_one_error_line(code, stderr, "a_file: the output folder (-o) is an existing file")
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_a_full_disk_while_writing_a_segmentation_is_one_line(model_folder, inputs, tmp_path, monkeypatch, capsys):
    real_write = sitk.WriteImage
    calls = []

    def disk_full_on_second(image, path, *args):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError(f"ITK ERROR: ImageFileWriter: could not write {path}\nNo space left on device")
        real_write(image, path, *args)

    monkeypatch.setattr(sitk, "WriteImage", disk_full_on_second)
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out")
    assert_one_error_line(code, stderr, "case 'b':", "b.nrrd: cannot write the file (No space left on device)")
    assert (tmp_path / "out" / "a.nrrd").is_file()
    assert not list((tmp_path / "out").glob(".*"))  # no half-written temporary file left behind


def test_a_full_disk_as_os_error_is_one_line(model_folder, inputs, tmp_path, monkeypatch, capsys):
    from nnunetv2.utilities import file_io

    def no_space(obj, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(file_io, "save_json", no_space)
    monkeypatch.setattr("nnunetv2.formats.dataset_json.save_json", no_space, raising=False)
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out")
    assert_one_error_line(code, stderr, "No space left on device (free some space and run the command again")


def test_a_2d_image_given_to_a_3d_model_is_refused_naming_the_case(model_folder, inputs, tmp_path, monkeypatch, capsys):
    for channel in (0, 1):
        rewrite(inputs / f"b_000{channel}.nrrd", lambda a: np.ascontiguousarray(a[4]))
    code, stderr = _predict(monkeypatch, capsys, model_folder, inputs, tmp_path / "out")
    assert_one_error_line(
        code, stderr, "case 'b':", "the input is a 2D image but plans 'nnUNetPlans' are for 3D images"
    )


def test_a_patch_size_edited_off_the_network_stride_is_refused(model_folder, inputs, tmp_path, monkeypatch, capsys):
    import shutil

    edited = tmp_path / "model"
    shutil.copytree(model_folder, edited)
    plans = json.loads((edited / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["patch_size"] = [8, 15, 16]  # total stride 2 on every axis
    (edited / "plans.json").write_text(json.dumps(plans))
    code, stderr = _predict(monkeypatch, capsys, edited, inputs, tmp_path / "out")
    assert_one_error_line(
        code, stderr, "configuration '3d_fullres': patch_size [8, 15, 16] is not a multiple of the network's total "
        "stride [2, 2, 2] on every axis (e.g. use [8, 16, 16])",
    )  # fmt: skip
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.nrrd"))
