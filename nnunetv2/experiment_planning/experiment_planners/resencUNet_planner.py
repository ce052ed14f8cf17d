"""nnU-Net v2's ``...experiment_planners.resencUNet_planner``: our ResEncUNetPlanner."""

from nnunetv2.experiment_planning.resenc_planner import ResEncUNetPlanner

__all__ = ["ResEncUNetPlanner"]
