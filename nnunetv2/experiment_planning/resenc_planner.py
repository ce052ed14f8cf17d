"""Residual-encoder U-Net planners (nnU-Net v2's ResEnc presets M, L, XL)."""

from __future__ import annotations

from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner


class ResEncUNetPlanner(ExperimentPlanner):
    """ResidualEncoderUNet with (1, 3, 4, 6, 6, ...) residual blocks per encoder stage, one conv per decoder stage.

    2d and 3d_fullres reuse the default planner's preprocessed data (same spacing and normalization).
    """

    UNet_class_name = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    UNet_encoder_blocks_kwarg = "n_blocks_per_stage"
    UNet_blocks_per_stage_encoder = (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)
    UNet_blocks_per_stage_decoder = (1,) * 12
    UNet_reference_val_3d = 680_000_000
    UNet_reference_val_2d = 135_000_000
    fit_memory_for_reference_batch_size = True
    default_plans_name = "nnUNetResEncUNetPlans"
    configurations_sharing_default_data = ("2d", "3d_fullres")


class nnUNetPlannerResEncM(ResEncUNetPlanner):
    """ResEnc preset for ~9-11 GB of GPU memory."""

    memory_target_is_tuned = True
    default_plans_name = "nnUNetResEncUNetMPlans"
    max_dataset_covered = 1.0


class nnUNetPlannerResEncL(ResEncUNetPlanner):
    """ResEnc preset for ~24 GB of GPU memory."""

    default_gpu_memory_target_in_gb = 24.0
    memory_target_is_tuned = True
    UNet_reference_val_corresp_GB = 24
    UNet_reference_val_3d = 2_100_000_000
    UNet_reference_val_2d = 380_000_000
    default_plans_name = "nnUNetResEncUNetLPlans"
    max_dataset_covered = 1.0


class nnUNetPlannerResEncXL(ResEncUNetPlanner):
    """ResEnc preset for ~40 GB of GPU memory."""

    default_gpu_memory_target_in_gb = 40.0
    memory_target_is_tuned = True
    UNet_reference_val_corresp_GB = 40
    UNet_reference_val_3d = 3_600_000_000
    UNet_reference_val_2d = 560_000_000
    default_plans_name = "nnUNetResEncUNetXLPlans"
    max_dataset_covered = 1.0
