"""nnU-Net v2's ``PlansManager`` and ``ConfigurationManager``: views of our Plans with nnU-Net v2's names.

An alias module (documentation/compatibility.md): the plans logic is ``nnunetv2.formats.plans``;
this module only maps nnU-Net v2's attribute names onto it. ``PlansManager`` *is* a ``Plans``, and
every function of ours that takes a configuration also takes a ``ConfigurationManager``, so both
can be handed to our preprocessor, export and predictor.
"""

from __future__ import annotations

import os
from dataclasses import fields
from functools import partial
from typing import Any

from nnunetv2.formats.plans import ConfigurationPlans, Plans, as_plans


class ConfigurationManager:
    """One resolved configuration, with nnU-Net v2's properties (``configuration`` is the dict)."""

    def __init__(self, configuration_dict: dict[str, Any], name: str = "configuration"):
        self.configuration = configuration_dict
        self.configuration_plans = ConfigurationPlans.from_dict(name, configuration_dict)

    @classmethod
    def from_configuration_plans(cls, configuration: ConfigurationPlans) -> ConfigurationManager:
        """The view of one of our ConfigurationPlans."""
        return cls(configuration.to_dict(), configuration.name)

    def __repr__(self) -> str:
        return f"ConfigurationManager({self.configuration_plans.name})"

    @property
    def data_identifier(self) -> str:
        return self.configuration_plans.data_identifier

    @property
    def preprocessor_name(self) -> str:
        return self.configuration_plans.preprocessor_name

    @property
    def preprocessor_class(self) -> type:
        from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name

        return preprocessor_class_from_name(self.preprocessor_name)

    @property
    def batch_size(self) -> int:
        return self.configuration_plans.batch_size

    @property
    def patch_size(self) -> list[int]:
        return self.configuration_plans.patch_size

    @property
    def median_image_size_in_voxels(self) -> list[float]:
        return self.configuration_plans.median_image_size_in_voxels

    @property
    def spacing(self) -> list[float]:
        return self.configuration_plans.spacing

    @property
    def normalization_schemes(self) -> list[str]:
        return self.configuration_plans.normalization_schemes

    @property
    def use_mask_for_norm(self) -> list[bool]:
        return self.configuration_plans.use_mask_for_norm

    @property
    def network_arch_class_name(self) -> str:
        return self.configuration_plans.architecture.network_class_name

    @property
    def network_arch_init_kwargs(self) -> dict[str, Any]:
        return self.configuration_plans.architecture.arch_kwargs

    @property
    def network_arch_init_kwargs_req_import(self) -> list[str]:
        return self.configuration_plans.architecture.kw_requires_import

    @property
    def pool_op_kernel_sizes(self) -> list[list[int]]:
        return self.network_arch_init_kwargs["strides"]

    def _resampling(self, which: str):
        from nnunetv2.preprocessing.resampling import resampling_function_by_name

        c = self.configuration_plans
        return partial(resampling_function_by_name(getattr(c, which)), **getattr(c, which + "_kwargs"))

    @property
    def resampling_fn_data(self):
        """The data resampling function, plans' kwargs bound: ``fn(data, new_shape, current_spacing, new_spacing)``."""
        return self._resampling("resampling_fn_data")

    @property
    def resampling_fn_probabilities(self):
        return self._resampling("resampling_fn_probabilities")

    @property
    def resampling_fn_seg(self):
        return self._resampling("resampling_fn_seg")

    @property
    def batch_dice(self) -> bool:
        return self.configuration_plans.batch_dice

    @property
    def next_stage_names(self) -> list[str] | None:
        stage = self.configuration_plans.next_stage
        return None if stage is None else ([stage] if isinstance(stage, str) else list(stage))

    @property
    def previous_stage_name(self) -> str | None:
        return self.configuration_plans.previous_stage


class PlansManager(Plans):
    """nnU-Net v2's ``PlansManager(plans_file_or_dict)``: our Plans plus nnU-Net v2's names.

    ``plans`` is the plans dict (a fresh copy on each access: change plans through a dict and
    build a new PlansManager).
    """

    def __init__(self, plans_file_or_dict: str | os.PathLike | dict[str, Any] | Plans):
        plans = as_plans(plans_file_or_dict)
        super().__init__(**{f.name: getattr(plans, f.name) for f in fields(Plans)})

    def __repr__(self) -> str:
        return f"PlansManager({self.plans_name} of {self.dataset_name})"

    @property
    def plans(self) -> dict[str, Any]:
        return self.to_dict()

    # nnU-Net v2 returns its ConfigurationManager here; every function of ours accepts one too
    def get_configuration(self, configuration_name: str) -> ConfigurationManager:  # type: ignore[override]
        return ConfigurationManager.from_configuration_plans(self.configuration(configuration_name))

    @property
    def image_reader_writer_class(self) -> type:
        from nnunetv2.imageio.registry import reader_writer_class_from_name

        return reader_writer_class_from_name(self.image_reader_writer)

    @property
    def experiment_planner_name(self) -> str:
        return self.experiment_planner_used

    @property
    def experiment_planner_class(self) -> type:
        from nnunetv2.experiment_planning.planner import planner_class_from_name

        return planner_class_from_name(self.experiment_planner_name)

    @property
    def label_manager_class(self) -> type:
        from nnunetv2.dataset.label_manager import LabelManager

        return LabelManager

    def get_label_manager(self, dataset_json: dict[str, Any], **kwargs):
        """The LabelManager of a dataset.json dict (nnU-Net v2's extra kwargs are not supported)."""
        from nnunetv2.dataset.label_manager import LabelManager

        return LabelManager(dataset_json["labels"], dataset_json.get("regions_class_order"))
