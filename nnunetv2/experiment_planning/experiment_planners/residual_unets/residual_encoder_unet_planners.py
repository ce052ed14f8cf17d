"""nnU-Net v2's ``...residual_unets.residual_encoder_unet_planners``: our ResEnc presets."""

from nnunetv2.experiment_planning.resenc_planner import (
    ResEncUNetPlanner,
    nnUNetPlannerResEncL,
    nnUNetPlannerResEncM,
    nnUNetPlannerResEncXL,
)

__all__ = ["ResEncUNetPlanner", "nnUNetPlannerResEncL", "nnUNetPlannerResEncM", "nnUNetPlannerResEncXL"]
