import json
import logging
import sys

import pytest

from nnunetv2.exceptions import PlansError
from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.planner import planner_class_from_name
from nnunetv2.experiment_planning.resenc_planner import ResEncUNetPlanner, nnUNetPlannerResEncL, nnUNetPlannerResEncM
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans

LABELS = {"background": 0, "a": 1, "b": 2}
STATS = {
    "0": {
        "mean": 1.0,
        "median": 1.0,
        "std": 1.0,
        "min": 0.0,
        "max": 2.0,
        "percentile_99_5": 2.0,
        "percentile_00_5": 0.0,
    }
}


def _fingerprint(spacings, shapes, relative_size=0.9):
    return {
        "spacings": spacings,
        "shapes_after_crop": shapes,
        "foreground_intensity_properties_per_channel": STATS,
        "median_relative_size_after_cropping": relative_size,
    }


def _planner(
    channels,
    num_training,
    spacings,
    shapes,
    planner_class=ExperimentPlanner,
    labels=LABELS,
    relative_size=0.9,
    **options,
):
    dataset_json = DatasetJson.from_dict(
        {
            "channel_names": {str(i): c for i, c in enumerate(channels)},
            "labels": labels,
            "numTraining": num_training,
            "file_ending": ".nii.gz",
        }
    )
    return planner_class(
        dataset_json, _fingerprint(spacings, shapes, relative_size), "Dataset001_X", "SimpleITKIO", **options
    )


def _ct_anisotropic(planner_class=ExperimentPlanner, **options):
    return _planner(
        ["CT"], 40, [[2.5, 0.8, 0.8]] * 20 + [[1.0, 0.7, 0.7]] * 20, [[120, 512, 512]] * 40, planner_class, **options
    )


def _summary(plans):
    return {
        name: (
            c.get("patch_size"),
            c.get("batch_size"),
            c.get("spacing"),
            c.get("batch_dice"),
            c.get("architecture", {}).get("arch_kwargs", {}).get("strides"),
        )
        for name, c in plans.configurations.items()
    }


def test_ct_anisotropic_plans_equal_nnunet_v2():
    # expected values produced by nnU-Net v2.8.1's ExperimentPlanner on the same fingerprint
    plans = _ct_anisotropic().plan_experiment()
    assert list(plans.configurations) == ["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"]
    assert plans.transpose_forward == [0, 1, 2]
    assert plans.original_median_spacing_after_transp == [1.75, 0.75, 0.75]
    assert plans.original_median_shape_after_transp == [120, 512, 512]
    s = _summary(plans)
    assert s["2d"] == ([512, 512], 12, [0.75, 0.75], True, [[1, 1]] + [[2, 2]] * 7)
    assert s["3d_fullres"] == (
        [48, 224, 192],
        2,
        [1.75, 0.75, 0.75],
        True,
        [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]],
    )
    assert s["3d_lowres"] == (
        [56, 224, 192],
        2,
        [2.351853663852214, 1.2035298293240906, 1.2035298293240906],
        False,
        [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]],
    )
    fullres = plans.configurations["3d_fullres"]
    assert fullres["architecture"]["arch_kwargs"]["kernel_sizes"] == [[1, 3, 3]] + [[3, 3, 3]] * 5
    assert fullres["median_image_size_in_voxels"] == [120.0, 512.0, 512.0]
    assert plans.configurations["3d_lowres"]["median_image_size_in_voxels"] == [89, 319, 319]
    assert plans.configurations["3d_lowres"]["next_stage"] == "3d_cascade_fullres"
    assert plans.configurations["3d_cascade_fullres"] == {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    assert fullres["normalization_schemes"] == ["CTNormalization"] and fullres["use_mask_for_norm"] == [False]


def test_multichannel_anisotropic_mri_without_lowres():
    # a prostate-like dataset; the values are nnU-Net v2.8.1's
    planner = _planner(
        ["T2", "ADC"],
        32,
        [[3.6, 0.62, 0.62]] * 16 + [[3.0, 0.6, 0.6]] * 16,
        [[20, 320, 320]] * 10 + [[24, 256, 256]] * 22,
        relative_size=0.5,
    )
    plans = planner.plan_experiment()
    assert list(plans.configurations) == ["2d", "3d_fullres"]
    s = _summary(plans)
    assert s["2d"][:2] == ([256, 256], 38)
    assert s["3d_fullres"][:4] == ([24, 256, 256], 2, [3.0, 0.61, 0.61], False)
    fullres = plans.configurations["3d_fullres"]
    assert fullres["use_mask_for_norm"] == [True, True]
    assert fullres["architecture"]["arch_kwargs"]["kernel_sizes"][:3] == [[1, 3, 3], [1, 3, 3], [3, 3, 3]]


def test_2d_data_gets_only_the_2d_configuration():
    plans = _planner(["rgb_to_0_1"], 30, [[999.0, 1.0, 1.0]] * 30, [[1, 512, 640]] * 30).plan_experiment()
    assert list(plans.configurations) == ["2d"]
    two_d = plans.configurations["2d"]
    # 5% of 30 images of 512 x 640 is 1.5 patches: the cap rounds to 2, the minimum
    assert two_d["patch_size"] == [512, 640] and two_d["batch_size"] == 2
    assert two_d["architecture"]["arch_kwargs"]["conv_op"] == "torch.nn.modules.conv.Conv2d"
    assert two_d["architecture"]["arch_kwargs"]["norm_op"] == "torch.nn.modules.instancenorm.InstanceNorm2d"
    assert max(two_d["architecture"]["arch_kwargs"]["features_per_stage"]) == 512


def test_small_dataset_caps_the_batch_at_5_percent_of_its_voxels():
    plans = _planner(["T1"], 6, [[1, 1, 1]] * 6, [[100, 110, 90]] * 6).plan_experiment()
    dataset_voxels = 100 * 110 * 90 * 6
    two_d, fullres = plans.configurations["2d"], plans.configurations["3d_fullres"]
    assert two_d["patch_size"] == [112, 96]
    assert two_d["batch_size"] == round(dataset_voxels * 0.05 / (112 * 96)) == 28
    assert fullres["patch_size"] == [112, 112, 96]
    assert fullres["batch_size"] == 2  # the cap (0.25) is below the minimum batch size
    tiny = _planner(["T1"], 100, [[1, 1, 1]] * 100, [[20, 24, 28]] * 100).plan_experiment()
    assert tiny.configurations["3d_fullres"]["patch_size"] == [20, 24, 28]
    assert tiny.configurations["3d_fullres"]["batch_size"] == 5
    assert tiny.configurations["2d"]["batch_size"] == 100
    assert "3d_lowres" not in tiny.configurations


def test_lowres_only_for_large_images():
    small = _planner(["CT"], 50, [[0.8] * 3] * 50, [[140, 150, 130]] * 50).plan_experiment()
    assert "3d_lowres" not in small.configurations and small.configurations["3d_fullres"]["batch_dice"] is False
    large = _planner(["CT"], 50, [[0.8] * 3] * 50, [[400 + i, 420, 380] for i in range(50)]).plan_experiment()
    lowres, fullres = large.configurations["3d_lowres"], large.configurations["3d_fullres"]
    assert fullres["patch_size"] == [128, 128, 128] and fullres["batch_dice"] is True
    assert lowres["median_image_size_in_voxels"] == [209, 207, 187]
    assert lowres["patch_size"] == [128, 128, 128] and lowres["batch_dice"] is False
    assert lowres["data_identifier"] == "nnUNetPlans_3d_lowres"
    # the lowres patch covers at least 25% of the lowres median image
    assert 128**3 / (209 * 207 * 187) >= 0.25


def test_memory_target_scales_patch_and_batch():
    small = _ct_anisotropic(gpu_memory_target_in_gb=4).plan_experiment().configurations["3d_fullres"]
    default = _ct_anisotropic().plan_experiment().configurations["3d_fullres"]
    large = _ct_anisotropic(gpu_memory_target_in_gb=24).plan_experiment().configurations["3d_fullres"]
    volumes = [
        s["patch_size"][0] * s["patch_size"][1] * s["patch_size"][2] * s["batch_size"] for s in (small, default, large)
    ]
    assert volumes[0] < volumes[1] < volumes[2]


def test_resenc_planners_change_only_attributes():
    plans = _ct_anisotropic(nnUNetPlannerResEncM).plan_experiment()
    assert plans.plans_name == "nnUNetResEncUNetMPlans"
    assert plans.experiment_planner_used == "nnUNetPlannerResEncM"
    fullres = plans.configurations["3d_fullres"]
    arch = fullres["architecture"]
    assert arch["network_class_name"] == "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    assert arch["arch_kwargs"]["n_blocks_per_stage"] == [1, 3, 4, 6, 6, 6]
    assert arch["arch_kwargs"]["n_conv_per_stage_decoder"] == [1] * 5
    assert "n_conv_per_stage" not in arch["arch_kwargs"]
    assert fullres["patch_size"] == [48, 192, 192]  # nnU-Net v2.8.1's value
    # 2d and 3d_fullres reuse the default planner's preprocessed data
    assert fullres["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert plans.configurations["3d_lowres"]["data_identifier"] == "nnUNetResEncUNetMPlans_3d_lowres"
    assert nnUNetPlannerResEncL.default_gpu_memory_target_in_gb == 24
    assert _ct_anisotropic(nnUNetPlannerResEncL).gpu_memory_target_in_gb == 24
    assert ResEncUNetPlanner.max_dataset_covered == 0.05 and nnUNetPlannerResEncM.max_dataset_covered == 1


def test_plans_json_round_trips_with_nnunet_types(tmp_path):
    planner = _ct_anisotropic(plans_name="MyPlans", preprocessor_name="MyPreprocessor")
    path = planner.save_plans(planner.plan_experiment(), tmp_path)
    assert path == tmp_path / "MyPlans.json"
    raw = json.loads(path.read_text())
    loaded = Plans.load(path)
    assert loaded.to_dict() == raw
    assert list(raw) == [
        "dataset_name",
        "plans_name",
        "original_median_spacing_after_transp",
        "original_median_shape_after_transp",
        "image_reader_writer",
        "transpose_forward",
        "transpose_backward",
        "configurations",
        "experiment_planner_used",
        "label_manager",
        "foreground_intensity_properties_per_channel",
    ]
    assert raw["label_manager"] == "LabelManager" and raw["image_reader_writer"] == "SimpleITKIO"
    assert raw["foreground_intensity_properties_per_channel"] == STATS
    for name in ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"):
        c = loaded.configuration(name)
        assert c.data_identifier == ("MyPlans_" + name).replace("cascade_", "")
        assert c.preprocessor_name == "MyPreprocessor"
        assert isinstance(raw["configurations"].get(name, {}).get("batch_size", 2), int)
        assert all(isinstance(p, int) for p in c.patch_size) and all(isinstance(s, float) for s in c.spacing)
        assert c.resampling_fn_data == c.resampling_fn_seg == "resample_data_or_seg_to_shape"
        assert c.resampling_fn_data_kwargs == {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
        assert c.resampling_fn_seg_kwargs == {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None}
        assert c.resampling_fn_probabilities_kwargs["order"] == 1
        assert c.architecture.kw_requires_import == ["conv_op", "norm_op", "dropout_op", "nonlin"]
        kwargs = c.architecture.arch_kwargs
        assert kwargs["norm_op_kwargs"] == {"eps": 1e-05, "affine": True} and kwargs["dropout_op"] is None
        assert kwargs["nonlin"] == "torch.nn.LeakyReLU" and kwargs["nonlin_kwargs"] == {"inplace": True}
        assert kwargs["conv_bias"] is True and len(kwargs["n_conv_per_stage"]) == kwargs["n_stages"]
    assert loaded.configuration("3d_cascade_fullres").previous_stage == "3d_lowres"
    assert loaded.configuration("3d_cascade_fullres").patch_size == [48, 224, 192]


def test_saving_keeps_custom_configurations(tmp_path):
    planner = _planner(["T1"], 6, [[1, 1, 1]] * 6, [[100, 110, 90]] * 6)
    path = planner.save_plans(planner.plan_experiment(), tmp_path)
    raw = json.loads(path.read_text())
    raw["configurations"]["3d_fullres_bs8"] = {"inherits_from": "3d_fullres", "batch_size": 8}
    raw["configurations"]["2d"]["batch_size"] = 999
    path.write_text(json.dumps(raw))
    planner.save_plans(planner.plan_experiment(), tmp_path)
    again = Plans.load(path)
    assert again.configuration("3d_fullres_bs8").batch_size == 8
    assert again.configurations["2d"]["batch_size"] == 28  # planned configurations are replanned


def test_planner_lookup_by_name_and_module_path(tmp_path, monkeypatch):
    assert planner_class_from_name("ExperimentPlanner") is ExperimentPlanner
    assert planner_class_from_name("nnUNetPlannerResEncM") is nnUNetPlannerResEncM
    (tmp_path / "my_planners.py").write_text(
        "from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner\n"
        "class BigBatchPlanner(ExperimentPlanner):\n    UNet_min_batch_size = 4\n"
        "class NotAPlanner:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    custom = planner_class_from_name("my_planners:BigBatchPlanner")
    assert custom.UNet_min_batch_size == 4
    plans = _planner(["T1"], 6, [[1, 1, 1]] * 6, [[100, 110, 90]] * 6, custom).plan_experiment()
    assert plans.configurations["3d_fullres"]["batch_size"] == 4
    assert plans.experiment_planner_used == "BigBatchPlanner"
    with pytest.raises(PlansError, match="unknown planner 'nnUNetPlannerXYZ' \\(known: .*ExperimentPlanner"):
        planner_class_from_name("nnUNetPlannerXYZ")
    with pytest.raises(PlansError, match="'NotAPlanner' is not an ExperimentPlanner subclass"):
        planner_class_from_name("my_planners:NotAPlanner")
    with pytest.raises(PlansError, match="cannot import module 'no_such_module_xyz'"):
        planner_class_from_name("no_such_module_xyz:Planner")
    sys.modules.pop("my_planners", None)


def test_bad_inputs_give_one_line_errors():
    spacings, shapes = [[1, 1, 1]] * 2, [[50, 50, 50]] * 2
    with pytest.raises(PlansError, match=r"the GPU memory target \(GB\) must be a number > 0, got 0"):
        _planner(["T1"], 2, spacings, shapes, gpu_memory_target_in_gb=0)
    with pytest.raises(PlansError, match="a case has a spacing <= 0"):
        _planner(["T1"], 2, [[1, 0, 1]] * 2, shapes)
    with pytest.raises(PlansError, match="list 3 numbers for each of the same cases"):
        _planner(["T1"], 2, spacings, [[50, 50, 50]])
    with pytest.raises(PlansError, match="three positive numbers"):
        _planner(["T1"], 2, spacings, shapes, overwrite_target_spacing=[1.0, 1.0])
    dataset_json = DatasetJson.from_dict(
        {"channel_names": {"0": "T1"}, "labels": LABELS, "numTraining": 2, "file_ending": ".nii.gz"}
    )
    broken = {k: v for k, v in _fingerprint(spacings, shapes).items() if k != "shapes_after_crop"}
    with pytest.raises(PlansError, match="fp.json: required key 'shapes_after_crop' is missing"):
        ExperimentPlanner(dataset_json, broken, "Dataset001_X", "SimpleITKIO", fingerprint_source="fp.json")
    with pytest.raises(PlansError, match="nnUNetPlans_3d_fullres: the GPU memory target of 0.001 GB is too small"):
        _planner(["T1"], 2, spacings, shapes, gpu_memory_target_in_gb=0.001).plan_experiment()


def test_images_too_small_for_a_unet(caplog):
    with pytest.raises(
        PlansError,
        match=r"nnUNetPlans_2d: the median image size \[6.0, 7.0\] of dataset "
        r"Dataset001_X is too small for a U-Net \(it needs 8 voxels",
    ):
        _planner(["T1"], 4, [[999.0, 1, 1]] * 4, [[1, 6, 7]] * 4).plan_experiment()
    with caplog.at_level(logging.WARNING):
        tubes = _planner(["T1"], 4, [[1, 1, 1]] * 4, [[100, 6, 6]] * 4).plan_experiment()
    assert list(tubes.configurations) == ["3d_fullres"]
    assert tubes.configurations["3d_fullres"]["architecture"]["arch_kwargs"]["strides"][1] == [2, 1, 1]
    assert "no 2d configuration" in caplog.text


def test_presets_warn_about_another_memory_target(caplog):
    with caplog.at_level(logging.WARNING):
        _ct_anisotropic(nnUNetPlannerResEncL, gpu_memory_target_in_gb=8)
        _ct_anisotropic(gpu_memory_target_in_gb=11)
    assert [r.getMessage() for r in caplog.records] == [
        "nnUNetPlannerResEncL is tuned for 24.0 GB; planning for 8 GB as requested"
    ]


def test_overwrite_target_spacing_and_suppress_transpose():
    planner = _planner(["T1"], 10, [[0.7, 0.7, 3.0]] * 10, [[300, 300, 40]] * 10)
    assert planner.plan_experiment().transpose_forward == [2, 0, 1]
    kept = _planner(
        ["T1"],
        10,
        [[0.7, 0.7, 3.0]] * 10,
        [[300, 300, 40]] * 10,
        suppress_transpose=True,
        overwrite_target_spacing=[1.0, 1.0, 2.0],
    ).plan_experiment()
    assert kept.transpose_forward == [0, 1, 2]
    assert kept.configurations["3d_fullres"]["spacing"] == [1.0, 1.0, 2.0]
    assert kept.configurations["3d_fullres"]["median_image_size_in_voxels"] == [210.0, 210.0, 60.0]
