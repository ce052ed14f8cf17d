"""nnU-Net v2's ``...experiment_planners.default_experiment_planner``: our ExperimentPlanner."""

from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner

__all__ = ["ExperimentPlanner"]
