import pytest
import torch

from nnunetv2.architectures.memory_estimate import conv_feature_map_size
from nnunetv2.architectures.network_builder import build_network
from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.resenc_planner import nnUNetPlannerResEncM
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans


def _tiny_plans(planner_class) -> Plans:
    dataset_json = DatasetJson.from_dict(
        {
            "channel_names": {"0": "T1", "1": "T2"},
            "labels": {"background": 0, "a": 1, "b": 2},
            "numTraining": 100,
            "file_ending": ".nii.gz",
        }
    )
    fingerprint = {
        "spacings": [[2.0, 1.0, 1.0]] * 4,
        "shapes_after_crop": [[10, 24, 28]] * 4,
        "foreground_intensity_properties_per_channel": {},
        "median_relative_size_after_cropping": 1.0,
    }
    return planner_class(dataset_json, fingerprint, "Dataset001_X", "SimpleITKIO").plan_experiment()


def test_estimate_equals_the_real_network_without_deep_supervision():
    plans = _tiny_plans(ExperimentPlanner)
    architecture = plans.configuration("3d_fullres").architecture
    network = build_network(architecture, 2, 3, deep_supervision=False)
    patch = plans.configuration("3d_fullres").patch_size
    expected = int(network.compute_conv_feature_map_size(patch))
    assert conv_feature_map_size(architecture, patch, 2, 3) == expected
    # more output channels, more segmentation-layer voxels: the estimate is not a constant
    assert conv_feature_map_size(architecture, patch, 2, 30) > expected


@pytest.mark.parametrize("planner_class", [ExperimentPlanner, nnUNetPlannerResEncM])
@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_planned_architecture_builds_and_runs(planner_class, configuration):
    torch.manual_seed(0)
    plans = _tiny_plans(planner_class)
    config = plans.configuration(configuration)
    network = build_network(config.architecture, 2, 3, deep_supervision=True)
    outputs = network(torch.randn(1, 2, *config.patch_size))
    assert outputs[0].shape == (1, 3, *config.patch_size)
    assert len(outputs) == config.architecture.arch_kwargs["n_stages"] - 1
    assert torch.isfinite(outputs[0]).all()
