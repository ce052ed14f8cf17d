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
