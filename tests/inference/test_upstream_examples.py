"""nnU-Net v2's Python inference API, used the way its own examples use it, against nnUNetv2_predict.

Every variant of nnU-Net v2's inference examples (input/output folders, lists of files, returned
segmentations, a list of arrays, one array, a custom iterator over ``run_case_npy``) runs here on a
tiny one-channel model through nnU-Net v2's module paths, and each prediction must equal the one
``nnUNetv2_predict`` writes for the same case.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.architectures.network_builder import build_network
from nnunetv2.formats.plans import ArchitectureSpec
from tests.helpers.tiny_models import ARCHITECTURE, tiny_plans, write_case

BIN = Path(sys.executable).parent
DATASET = "Dataset003_Liver"
MODEL = "nnUNetTrainer__nnUNetPlans__3d_lowres"
CASES = ("liver_152", "liver_142", "liver_147", "liver_146")


def _make_single_channel_model(results: Path) -> Path:
    """A 3d_lowres model folder of one CT channel and labels 0, 1, 2 (random weights, nnU-Net v2's layout)."""
    plans = tiny_plans()
    configuration = plans["configurations"].pop("3d_fullres")
    configuration.update(
        normalization_schemes=["CTNormalization"], use_mask_for_norm=[False], data_identifier="nnUNetPlans_3d_lowres"
    )
    plans["configurations"]["3d_lowres"] = configuration
    plans["dataset_name"] = DATASET
    plans["foreground_intensity_properties_per_channel"] = {
        "0": {"mean": 100.0, "std": 10.0, "percentile_00_5": 60.0, "percentile_99_5": 140.0}
    }
    dataset_json = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "liver": 1, "tumor": 2},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    folder = results / DATASET / MODEL
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    torch.manual_seed(0)
    network = build_network(ArchitectureSpec.from_dict(ARCHITECTURE), 1, 3, deep_supervision=True)
    checkpoint = {
        "network_weights": network.state_dict(),
        "init_args": {"plans": plans, "configuration": "3d_lowres", "fold": 0, "dataset_json": dataset_json},
        "trainer_name": "nnUNetTrainer",
        "inference_allowed_mirroring_axes": (0, 1, 2),
        "current_epoch": 1,
    }
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """nnUNet_raw with imagesTs, nnUNet_results with the model, and nnUNetv2_predict's reference output."""
    root = tmp_path_factory.mktemp("upstream_examples")
    folders = {v: root / v for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for folder in folders.values():
        folder.mkdir()
    _make_single_channel_model(folders["nnUNet_results"])
    images = folders["nnUNet_raw"] / DATASET / "imagesTs"
    for seed, case in enumerate(CASES):
        write_case(images, case, seed, num_channels=1)
    reference = root / "reference"
    environment = {**__import__("os").environ, **{k: str(v) for k, v in folders.items()}, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "nnUNetv2_predict"), "-d", "3", "-c", "3d_lowres", "-f", "0", "-i", str(images)]
    command += ["-o", str(reference), "-device", "cpu", "--save_probabilities", "-npp", "1", "-nps", "1"]
    command += ["--not_on_device", "--disable_progress_bar"]
    subprocess.run(command, check=True, env=environment, capture_output=True)
    return {**folders, "images": images, "reference": reference}


@pytest.fixture
def predictor(env, monkeypatch):
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(var, str(env[var]))
    torch.set_num_threads(1)
    # nnU-Net v2's example, with only the device changed
    from batchgenerators.utilities.file_and_folder_operations import join

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.paths import nnUNet_results

    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,
        perform_everything_on_device=True,
        device=torch.device("cpu"),
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(
        join(nnUNet_results, f"{DATASET}/{MODEL}"), use_folds=(0,), checkpoint_name="checkpoint_final.pth"
    )
    return predictor


def _reference(env, case: str) -> tuple[np.ndarray, np.ndarray]:
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(env["reference"] / f"{case}.nii.gz")))
    return seg, np.load(env["reference"] / f"{case}.npz")["probabilities"]


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_folders_and_lists_of_files_write_what_nnUNetv2_predict_writes(env, predictor, tmp_path):
    from batchgenerators.utilities.file_and_folder_operations import join

    from nnunetv2.paths import nnUNet_raw

    # variant 1: input and output folders
    out1 = tmp_path / "variant1"
    predictor.predict_from_files(
        join(nnUNet_raw, f"{DATASET}/imagesTs"),
        str(out1),
        save_probabilities=False,
        overwrite=False,
        num_processes_preprocessing=2,
        num_processes_segmentation_export=2,
        folder_with_segs_from_prev_stage=None,
        num_parts=1,
        part_id=0,
    )
    for case in CASES:
        np.testing.assert_array_equal(_read(out1 / f"{case}.nii.gz"), _reference(env, case)[0])
    assert json.loads((out1 / "predict_from_raw_data_args.json").read_text())["overwrite"] is False
    # variant 2: nested lists of files and truncated output names
    indir, out2 = join(nnUNet_raw, f"{DATASET}/imagesTs"), tmp_path / "variant2"
    predictor.predict_from_files(
        [[join(indir, "liver_152_0000.nii.gz")], [join(indir, "liver_142_0000.nii.gz")]],
        [join(out2, "liver_152"), join(out2, "liver_142")],
        save_probabilities=False,
        overwrite=True,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        folder_with_segs_from_prev_stage=None,
        num_parts=1,
        part_id=0,
    )
    for case in ("liver_152", "liver_142"):
        np.testing.assert_array_equal(_read(out2 / f"{case}.nii.gz"), _reference(env, case)[0])


def test_returned_segmentations_arrays_and_custom_iterator_equal_nnUNetv2_predict(env, predictor):
    from batchgenerators.utilities.file_and_folder_operations import join

    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.paths import nnUNet_raw

    indir = join(nnUNet_raw, f"{DATASET}/imagesTs")
    # variant 2.5: no output names -> (segmentation, probabilities) returned
    returned = predictor.predict_from_files(
        [[join(indir, "liver_152_0000.nii.gz")], [join(indir, "liver_142_0000.nii.gz")]],
        None,
        save_probabilities=True,
        overwrite=True,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        folder_with_segs_from_prev_stage=None,
        num_parts=1,
        part_id=0,
    )
    for (seg, probabilities), case in zip(returned, ("liver_152", "liver_142")):
        reference_seg, reference_probabilities = _reference(env, case)
        np.testing.assert_array_equal(seg, reference_seg)
        np.testing.assert_allclose(probabilities, reference_probabilities, atol=1e-5)
    assert not (Path(indir).parent / "dataset.json").exists()  # nothing written next to the inputs

    images = [SimpleITKIO().read_images([join(indir, f"{case}_0000.nii.gz")]) for case in CASES]
    # a list of arrays, segmentations returned
    returned = predictor.predict_from_list_of_npy_arrays(
        [i for i, _ in images], None, [p for _, p in images], None, 2, save_probabilities=False,
        num_processes_segmentation_export=1,
    )  # fmt: skip
    for seg, case in zip(returned, CASES):
        np.testing.assert_array_equal(seg, _reference(env, case)[0])
    # one array, with probabilities
    img, props = images[0]
    seg, probabilities = predictor.predict_single_npy_array(img, props, None, None, True)
    np.testing.assert_array_equal(seg, _reference(env, CASES[0])[0])
    np.testing.assert_allclose(probabilities, _reference(env, CASES[0])[1], atol=1e-5)

    # a custom iterator, preprocessing as nnU-Net v2's example does it
    def my_iterator(list_of_input_arrs, list_of_input_props):
        preprocessor = predictor.configuration_manager.preprocessor_class(verbose=predictor.verbose)
        for a, p in zip(list_of_input_arrs, list_of_input_props):
            data, seg, p = preprocessor.run_case_npy(
                a, None, p, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json
            )
            yield {"data": torch.from_numpy(data).contiguous(), "data_properties": p, "ofile": None}

    returned = predictor.predict_from_data_iterator(
        my_iterator([i for i, _ in images], [p for _, p in images]),
        save_probabilities=False,
        num_processes_segmentation_export=1,
    )
    for seg, case in zip(returned, CASES):
        np.testing.assert_array_equal(seg, _reference(env, case)[0])


def test_sliding_window_and_manual_initialization(env, predictor):
    """The lower-level methods: logits of one fold, and a predictor set up from parts as a trainer does."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    img, raw_props = SimpleITKIO().read_images([str(env["images"] / "liver_147_0000.nii.gz")])
    preprocessor = predictor.configuration_manager.preprocessor_class()
    data, _, props = preprocessor.run_case_npy(
        img, None, raw_props, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json
    )
    logits = predictor.predict_sliding_window_return_logits(torch.from_numpy(data))
    assert torch.equal(logits, predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)))
    seg = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager, props
    )
    np.testing.assert_array_equal(seg, _reference(env, "liver_147")[0])

    manual = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    manual.manual_initialization(
        predictor.network,
        predictor.plans_manager,
        predictor.configuration_manager,
        [predictor.list_of_parameters[0]],
        predictor.dataset_json,
        predictor.trainer_name,
        predictor.allowed_mirroring_axes,
    )
    np.testing.assert_array_equal(manual.predict_single_npy_array(img, raw_props), _reference(env, "liver_147")[0])


def test_iterator_items_may_be_npy_files_that_are_removed_after_loading(env, predictor, tmp_path):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    img, props = SimpleITKIO().read_images([str(env["images"] / "liver_146_0000.nii.gz")])
    preprocessor = predictor.configuration_manager.preprocessor_class()
    data, _, props = preprocessor.run_case_npy(
        img, None, props, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json
    )
    np.save(tmp_path / "case.npy", data)
    written = predictor.predict_from_data_iterator(
        iter([{"data": str(tmp_path / "case.npy"), "data_properties": props, "ofile": str(tmp_path / "out")}]),
        num_processes_segmentation_export=1,
    )
    assert written == [str(tmp_path / "out.nii.gz")] and not (tmp_path / "case.npy").exists()
    np.testing.assert_array_equal(_read(tmp_path / "out.nii.gz"), _reference(env, "liver_146")[0])


def test_mismatched_array_lists_are_refused(predictor):
    from nnunetv2.exceptions import InferenceError

    with pytest.raises(InferenceError, match="give one of each per image"):
        predictor.predict_from_list_of_npy_arrays([np.zeros((1, 4, 4, 4))] * 2, None, [{"spacing": [1, 1, 1]}], None)
