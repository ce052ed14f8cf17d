import pytest

from nnunetv2.exceptions import PlansError
from nnunetv2.formats.plans import Plans

ARCH = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {"n_stages": 2},
    "_kw_requires_import": ["conv_op"],
}
FULLRES = {
    "data_identifier": "nnUNetPlans_3d_fullres",
    "preprocessor_name": "DefaultPreprocessor",
    "batch_size": 2,
    "patch_size": [16, 16, 16],
    "median_image_size_in_voxels": [20, 20, 20],
    "spacing": [1.0, 1.0, 1.0],
    "normalization_schemes": ["ZScoreNormalization"],
    "use_mask_for_norm": [False],
    "resampling_fn_data": "resample_data_or_seg_to_shape",
    "resampling_fn_seg": "resample_data_or_seg_to_shape",
    "resampling_fn_data_kwargs": {"is_seg": False},
    "resampling_fn_seg_kwargs": {"is_seg": True},
    "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
    "resampling_fn_probabilities_kwargs": {"is_seg": False},
    "architecture": ARCH,
    "batch_dice": False,
    "something_new": 1,
}
PLANS = {
    "dataset_name": "Dataset001_X",
    "plans_name": "nnUNetPlans",
    "original_median_spacing_after_transp": [1, 1, 1],
    "original_median_shape_after_transp": [20, 20, 20],
    "image_reader_writer": "SimpleITKIO",
    "transpose_forward": [0, 1, 2],
    "transpose_backward": [0, 1, 2],
    "configurations": {
        "3d_fullres": FULLRES,
        "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres", "batch_size": 4},
    },
    "experiment_planner_used": "ExperimentPlanner",
    "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {"0": {"mean": 1.0}},
    "extra_top": True,
}


def test_plans_round_trip_is_lossless(tmp_path):
    Plans.from_dict(PLANS).save(tmp_path / "p.json")
    assert Plans.load(tmp_path / "p.json").to_dict() == PLANS


def test_configuration_view_and_inheritance():
    plans = Plans.from_dict(PLANS)
    fullres = plans.configuration("3d_fullres")
    assert fullres.patch_size == [16, 16, 16] and not fullres.is_2d
    assert fullres.extra == {"something_new": 1}
    assert fullres.architecture.kw_requires_import == ["conv_op"]
    cascade = plans.configuration("3d_cascade_fullres")
    assert cascade.batch_size == 4 and cascade.previous_stage == "3d_lowres"
    assert cascade.data_identifier == "nnUNetPlans_3d_fullres"
    assert fullres.to_dict()["architecture"] == ARCH


def test_plans_errors():
    plans = Plans.from_dict(PLANS)
    with pytest.raises(PlansError, match="configuration '2d' is not in plans 'nnUNetPlans'"):
        plans.configuration("2d")
    with pytest.raises(PlansError, match="'transpose_forward' is missing"):
        Plans.from_dict({k: v for k, v in PLANS.items() if k != "transpose_forward"})
    broken = dict(PLANS, configurations={"a": {"inherits_from": "b"}, "b": {"inherits_from": "a"}})
    with pytest.raises(PlansError, match="loops"):
        Plans.from_dict(broken).configuration("a")
    missing_key = dict(PLANS, configurations={"x": {k: v for k, v in FULLRES.items() if k != "batch_size"}})
    with pytest.raises(PlansError, match="lacks the key 'batch_size'"):
        Plans.from_dict(missing_key).configuration("x")


def _with_strides(patch_size, strides) -> dict:
    architecture = dict(ARCH, arch_kwargs={"n_stages": len(strides), "strides": strides})
    return dict(PLANS, configurations={"x": dict(FULLRES, patch_size=patch_size, architecture=architecture)})


def test_patch_size_must_be_a_multiple_of_the_total_stride():
    Plans.from_dict(_with_strides([16, 32, 8], [1, [2, 2, 1], [2, 2, 2]])).configuration("x").check_patch_fits_network()
    Plans.from_dict(PLANS).configuration("3d_fullres").check_patch_fits_network()  # no strides: not checked
    off = Plans.from_dict(_with_strides([16, 30, 8], [1, [2, 2, 1], [2, 2, 2]])).configuration("x")
    with pytest.raises(PlansError, match=r"patch_size \[16, 30, 8\] is not a multiple of the network's total "):
        off.check_patch_fits_network()
    with pytest.raises(PlansError, match=r"total stride \[4, 4, 2\] on every axis \(e\.g\. use \[16, 32, 8\]\)"):
        off.check_patch_fits_network()
    two_axes = Plans.from_dict(_with_strides([16, 16, 16], [[1, 1], [2, 2]])).configuration("x")
    with pytest.raises(PlansError, match="strides of 2 axes for a 3D patch size"):
        two_axes.check_patch_fits_network()
