"""nnU-Net v2's names on our objects: paths, PlansManager/ConfigurationManager, label handling, file paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.tiny_models import DATASET_JSON, tiny_plans


def test_path_attributes_read_the_environment_when_used(monkeypatch, tmp_path):
    from nnunetv2 import paths
    from nnunetv2.paths import nnUNet_raw, nnUNet_results

    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    assert os.path.join(nnUNet_raw, "Dataset001_A") == str(tmp_path / "raw" / "Dataset001_A")
    assert str(nnUNet_raw) == str(tmp_path / "raw") and nnUNet_raw and nnUNet_raw != None  # noqa: E711
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "other"))  # changed after import: followed
    assert Path(nnUNet_raw) == tmp_path / "other" == paths.raw_folder()
    monkeypatch.delenv("nnUNet_results", raising=False)
    monkeypatch.setenv("NNUNET_DEFAULT_ROOT", str(tmp_path / "home"))
    assert nnUNet_results == None and not nnUNet_results  # noqa: E711 (nnU-Net v2 scripts test it like this)
    assert os.fspath(nnUNet_results) == str(tmp_path / "home" / "nnUNet_results")  # our commands' fallback


def test_plans_manager_is_our_plans_with_nnunet_v2_names(tmp_path):
    from nnunetv2.formats.plans import Plans
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor
    from nnunetv2.preprocessing.resampling import resample_data_or_seg_to_shape
    from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

    (tmp_path / "plans.json").write_text(json.dumps(tiny_plans()))
    from_file, from_dict = PlansManager(str(tmp_path / "plans.json")), PlansManager(tiny_plans())
    assert (
        isinstance(from_file, Plans)
        and from_file.to_dict() == from_dict.plans == Plans.from_dict(tiny_plans()).to_dict()
    )
    assert from_file.available_configurations == ["3d_fullres"] and from_file.plans_name == "nnUNetPlans"
    assert from_file.image_reader_writer_class is SimpleITKIO and from_file.transpose_backward == [0, 1, 2]
    assert from_file.experiment_planner_name == "ExperimentPlanner"
    assert from_file.get_label_manager(DATASET_JSON).num_segmentation_heads == 3

    cm = from_file.get_configuration("3d_fullres")
    assert isinstance(cm, ConfigurationManager) and cm.patch_size == [8, 16, 16] and cm.batch_size == 2
    assert cm.preprocessor_class is DefaultPreprocessor and cm.previous_stage_name is None
    assert cm.network_arch_class_name.endswith("PlainConvUNet") and cm.pool_op_kernel_sizes == [[1, 1, 1], [2, 2, 2]]
    assert cm.configuration["data_identifier"] == cm.data_identifier == "nnUNetPlans_3d_fullres"
    data = np.random.default_rng(0).normal(size=(1, 4, 6, 6)).astype(np.float32)
    expected = resample_data_or_seg_to_shape(data, (4, 12, 12), [1, 1, 1], [1, 0.5, 0.5], **tiny_plans()[
        "configurations"]["3d_fullres"]["resampling_fn_data_kwargs"])  # fmt: skip
    np.testing.assert_array_equal(cm.resampling_fn_data(data, (4, 12, 12), [1, 1, 1], [1, 0.5, 0.5]), expected)


def test_label_handling_functions():
    from nnunetv2.utilities.label_handling.label_handling import (
        LabelManager,
        convert_labelmap_to_one_hot,
        determine_num_input_channels,
        get_labelmanager_class_from_plans,
    )
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    seg = np.array([[0, 1], [2, 1]])
    one_hot = convert_labelmap_to_one_hot(seg, [0, 1, 2])
    assert one_hot.dtype == np.uint8 and one_hot.shape == (3, 2, 2) and one_hot[1].tolist() == [[0, 1], [0, 1]]
    as_tensor = convert_labelmap_to_one_hot(torch.from_numpy(seg), [0, 1, 2])
    assert torch.equal(as_tensor, torch.from_numpy(one_hot))
    assert get_labelmanager_class_from_plans(tiny_plans()) is LabelManager
    pm = PlansManager(tiny_plans())
    assert determine_num_input_channels(pm, "3d_fullres", DATASET_JSON) == 2
    assert determine_num_input_channels(PlansManager(tiny_plans("3d_lowres")), "3d_fullres", DATASET_JSON) == 4
    manager = LabelManager(DATASET_JSON["labels"], None)
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    assert manager.convert_logits_to_segmentation(logits).tolist() == [1, 2]
    assert torch.allclose(manager.apply_inference_nonlin(logits).sum(0), torch.ones(2))
    assert manager.all_regions is None


def test_dataset_name_and_file_path_utilities(nnunet_env):
    from nnunetv2.utilities.dataset_name_id_conversion import (
        convert_dataset_name_to_id,
        find_candidate_datasets,
        maybe_convert_to_dataset_name,
    )
    from nnunetv2.utilities.file_path_utilities import (
        convert_identifier_to_trainer_plans_config,
        folds_string_to_tuple,
        get_ensemble_name,
        get_output_folder,
        parse_dataset_trainer_plans_configuration_from_path,
    )

    (nnunet_env["nnUNet_raw"] / "Dataset004_Hippocampus").mkdir()
    assert maybe_convert_to_dataset_name(4) == "Dataset004_Hippocampus" == find_candidate_datasets(4)[0]
    assert convert_dataset_name_to_id("Dataset004_Hippocampus") == 4
    folder = get_output_folder(4, "nnUNetTrainer", "nnUNetPlans", "3d_fullres", fold=0)
    expected = nnunet_env["nnUNet_results"] / "Dataset004_Hippocampus" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert folder == str(expected / "fold_0")
    assert parse_dataset_trainer_plans_configuration_from_path(folder) == (
        "Dataset004_Hippocampus",
        "nnUNetTrainer",
        "nnUNetPlans",
        "3d_fullres",
    )
    assert convert_identifier_to_trainer_plans_config(str(expected)) == ["nnUNetTrainer", "nnUNetPlans", "3d_fullres"]
    assert get_ensemble_name("a/M1", "b/M2", (0, 1)) == "ensemble___M1___M2___0_1"
    assert folds_string_to_tuple("0_1_all") == [0, 1, "all"]


def test_reader_writer_registry_names(tmp_path):
    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
    from nnunetv2.imageio.reader_writer_registry import (
        LIST_OF_IO_CLASSES,
        determine_reader_writer_from_dataset_json,
        determine_reader_writer_from_file_ending,
        recursive_find_reader_writer_by_name,
    )
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    assert SimpleITKIO in LIST_OF_IO_CLASSES and NaturalImage2DIO in LIST_OF_IO_CLASSES
    assert determine_reader_writer_from_file_ending(".nii.gz") is SimpleITKIO
    assert determine_reader_writer_from_dataset_json({**DATASET_JSON, "file_ending": ".png"}) is NaturalImage2DIO
    assert recursive_find_reader_writer_by_name("SimpleITKIO") is SimpleITKIO
    with pytest.raises(RuntimeError, match="NoSuchIO"):
        recursive_find_reader_writer_by_name("NoSuchIO")
    with pytest.raises(RuntimeError, match=".xyz"):
        determine_reader_writer_from_file_ending(".xyz")


def test_configuration_constants(monkeypatch):
    import importlib

    import nnunetv2.configuration as configuration

    monkeypatch.setenv("nnUNet_def_n_proc", "3")
    monkeypatch.setenv("nnUNet_n_proc_DA", "5")
    importlib.reload(configuration)
    assert configuration.default_num_processes == 3 and configuration.default_n_proc_DA == 5
    assert configuration.ANISO_THRESHOLD == 3
