"""nnU-Net v2's ``nnunetv2.inference.predict_from_raw_data``: our predictor under nnU-Net v2's path.

``nnUNetPredictor`` here is our predictor (``nnunetv2.inference.predictor``, where every method
lives) plus the two attributes whose types are nnU-Net v2's views: ``plans_manager`` and
``configuration_manager`` (see ``nnunetv2.utilities.plans_handling.plans_handler``).
"""

from __future__ import annotations

from nnunetv2.inference.predictor import nnUNetPredictor as _OurPredictor
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

__all__ = ["nnUNetPredictor"]


class nnUNetPredictor(_OurPredictor):
    """nnU-Net v2's nnUNetPredictor (same constructor, methods and attributes)."""

    @property
    def plans_manager(self) -> PlansManager | None:
        """The model's plans as nnU-Net v2's PlansManager."""
        return PlansManager(self.model.plans) if self.model is not None else None

    @property
    def configuration_manager(self) -> ConfigurationManager | None:
        """The model's configuration as nnU-Net v2's ConfigurationManager."""
        if self.model is None:
            return None
        return ConfigurationManager.from_configuration_plans(self.model.configuration)
