"""Typed, lossless view of nnU-Net v2's plans file (``nnUNetPlans.json``)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnunetv2.exceptions import PlansError
from nnunetv2.utilities.file_io import load_json, save_json

_PLANS_KEYS = (
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
)


@dataclass
class ArchitectureSpec:
    """The ``architecture`` block: a dotted class path and its constructor arguments."""

    network_class_name: str
    arch_kwargs: dict[str, Any]
    kw_requires_import: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchitectureSpec:
        """Build from the JSON block."""
        return cls(d["network_class_name"], dict(d["arch_kwargs"]), list(d.get("_kw_requires_import", [])))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON block."""
        return {
            "network_class_name": self.network_class_name,
            "arch_kwargs": self.arch_kwargs,
            "_kw_requires_import": self.kw_requires_import,
        }


@dataclass
class ConfigurationPlans:
    """One resolved configuration (``inherits_from`` already applied)."""

    name: str
    data_identifier: str
    preprocessor_name: str
    batch_size: int
    patch_size: list[int]
    median_image_size_in_voxels: list[float]
    spacing: list[float]
    normalization_schemes: list[str]
    use_mask_for_norm: list[bool]
    resampling_fn_data: str
    resampling_fn_seg: str
    resampling_fn_probabilities: str
    resampling_fn_data_kwargs: dict[str, Any]
    resampling_fn_seg_kwargs: dict[str, Any]
    resampling_fn_probabilities_kwargs: dict[str, Any]
    batch_dice: bool
    architecture: ArchitectureSpec
    next_stage: str | list[str] | None = None
    previous_stage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> ConfigurationPlans:
        """Build from a resolved configuration dict."""
        try:
            known = dict(
                data_identifier=d["data_identifier"],
                preprocessor_name=d["preprocessor_name"],
                batch_size=int(d["batch_size"]),
                patch_size=[int(p) for p in d["patch_size"]],
                median_image_size_in_voxels=list(d["median_image_size_in_voxels"]),
                spacing=[float(s) for s in d["spacing"]],
                normalization_schemes=list(d["normalization_schemes"]),
                use_mask_for_norm=list(d["use_mask_for_norm"]),
                resampling_fn_data=d["resampling_fn_data"],
                resampling_fn_seg=d["resampling_fn_seg"],
                resampling_fn_probabilities=d["resampling_fn_probabilities"],
                resampling_fn_data_kwargs=dict(d["resampling_fn_data_kwargs"]),
                resampling_fn_seg_kwargs=dict(d["resampling_fn_seg_kwargs"]),
                resampling_fn_probabilities_kwargs=dict(d["resampling_fn_probabilities_kwargs"]),
                batch_dice=bool(d["batch_dice"]),
                architecture=ArchitectureSpec.from_dict(d["architecture"]),
                next_stage=d.get("next_stage"),
                previous_stage=d.get("previous_stage"),
            )
        except KeyError as e:
            raise PlansError(f"configuration '{name}' lacks the key {e}") from None
        taken = set(known) | {"architecture"}
        return cls(name=name, **known, extra={k: v for k, v in d.items() if k not in taken and k != "inherits_from"})

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON dict of this configuration (fully resolved, no ``inherits_from``)."""
        d = {
            k: getattr(self, k)
            for k in (
                "data_identifier",
                "preprocessor_name",
                "batch_size",
                "patch_size",
                "median_image_size_in_voxels",
                "spacing",
                "normalization_schemes",
                "use_mask_for_norm",
                "resampling_fn_data",
                "resampling_fn_seg",
                "resampling_fn_data_kwargs",
                "resampling_fn_seg_kwargs",
                "resampling_fn_probabilities",
                "resampling_fn_probabilities_kwargs",
            )
        }
        d["architecture"] = self.architecture.to_dict()
        d["batch_dice"] = self.batch_dice
        if self.next_stage is not None:
            d["next_stage"] = self.next_stage
        if self.previous_stage is not None:
            d["previous_stage"] = self.previous_stage
        d.update(self.extra)
        return d

    def check_patch_fits_network(self) -> None:
        """Raise PlansError (one line) when the patch size is not a multiple of the network's total stride on every
        axis: the decoder's upsampled maps would not match the skips (a hand-edited patch_size, say). Architectures
        without 'strides' are not checked."""
        strides = self.architecture.arch_kwargs.get("strides")
        if not strides:
            return
        dim = len(self.patch_size)
        total = [int(t) for t in np.prod([[s] * dim if isinstance(s, int) else list(s) for s in strides], axis=0)]
        if len(total) != dim:
            raise PlansError(f"configuration '{self.name}': strides of {len(total)} axes for a {dim}D patch size")
        if any(p % t for p, t in zip(self.patch_size, total)):
            suggestion = [max(t, int(round(p / t)) * t) for p, t in zip(self.patch_size, total)]
            raise PlansError(
                f"configuration '{self.name}': patch_size {self.patch_size} is not a multiple of the network's "
                f"total stride {total} on every axis (e.g. use {suggestion})"
            )

    @property
    def is_2d(self) -> bool:
        """True for 2D configurations (two patch axes)."""
        return len(self.patch_size) == 2

    # ----- nnU-Net v2's ConfigurationManager names (read by trainer hooks written for nnU-Net v2) -----

    @property
    def configuration(self) -> dict[str, Any]:
        """Return the resolved configuration as its JSON dict."""
        return self.to_dict()

    @property
    def network_arch_class_name(self) -> str:
        """Return the dotted class path of the network."""
        return self.architecture.network_class_name

    @property
    def network_arch_init_kwargs(self) -> dict[str, Any]:
        """Return the network's constructor arguments (a copy; class paths not yet imported)."""
        return copy.deepcopy(self.architecture.arch_kwargs)

    @property
    def network_arch_init_kwargs_req_import(self) -> list[str]:
        """Return the constructor arguments whose values are dotted paths to import."""
        return list(self.architecture.kw_requires_import)

    @property
    def pool_op_kernel_sizes(self) -> list:
        """Return the architecture's per-stage strides (nnU-Net v2's pooling kernel sizes)."""
        strides = self.architecture.arch_kwargs.get("strides")
        if strides is None:
            raise PlansError(f"configuration '{self.name}': the architecture has no 'strides'")
        return copy.deepcopy(strides)

    @property
    def previous_stage_name(self) -> str | None:
        """Return the cascade's previous configuration, or None."""
        return self.previous_stage

    @property
    def next_stage_names(self) -> list[str] | None:
        """Return the configurations that use this one as their previous stage, or None."""
        if self.next_stage is None:
            return None
        return [self.next_stage] if isinstance(self.next_stage, str) else list(self.next_stage)


@dataclass
class Plans:
    """The whole plans file; configurations are kept as raw dicts so saving is lossless."""

    dataset_name: str
    plans_name: str
    original_median_spacing_after_transp: list[float]
    original_median_shape_after_transp: list[int]
    image_reader_writer: str
    transpose_forward: list[int]
    transpose_backward: list[int]
    configurations: dict[str, dict[str, Any]]
    experiment_planner_used: str
    label_manager: str
    foreground_intensity_properties_per_channel: dict[str, dict[str, float]]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "plans") -> Plans:
        """Build from the parsed JSON, raising PlansError when a required key is missing."""
        missing = [k for k in _PLANS_KEYS if k not in d]
        if missing:
            raise PlansError(f"{source}: required key '{missing[0]}' is missing")
        return cls(**{k: d[k] for k in _PLANS_KEYS}, extra={k: v for k, v in d.items() if k not in _PLANS_KEYS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Plans:
        """Read a plans JSON file."""
        return cls.from_dict(load_json(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object with nnU-Net v2's keys."""
        d = {k: getattr(self, k) for k in _PLANS_KEYS}
        d.update(self.extra)
        return copy.deepcopy(d)

    def save(self, path: str | os.PathLike) -> None:
        """Write the plans atomically."""
        save_json(self.to_dict(), path, sort_keys=False)

    @property
    def available_configurations(self) -> list[str]:
        """Names of the configurations in these plans."""
        return list(self.configurations)

    def configuration(self, name: str) -> ConfigurationPlans:
        """Return the configuration ``name`` with ``inherits_from`` chains resolved."""
        return ConfigurationPlans.from_dict(name, self._resolved_dict(name, seen=()))

    # ----- nnU-Net v2's PlansManager names (read by trainer hooks written for nnU-Net v2) -----

    def get_configuration(self, configuration_name: str) -> ConfigurationPlans:
        """Return the configuration ``configuration_name`` (nnU-Net v2's name for ``configuration``)."""
        return self.configuration(configuration_name)

    @property
    def plans(self) -> dict[str, Any]:
        """Return the plans as their JSON dict."""
        return self.to_dict()

    def _resolved_dict(self, name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name not in self.configurations:
            raise PlansError(
                f"configuration '{name}' is not in plans '{self.plans_name}' "
                f"(available: {', '.join(self.configurations)})"
            )
        if name in seen:
            raise PlansError(f"plans '{self.plans_name}': 'inherits_from' loops through '{name}'")
        own = self.configurations[name]
        parent = own.get("inherits_from")
        if parent is None:
            return copy.deepcopy(own)
        merged = self._resolved_dict(parent, seen + (name,))
        merged.update(copy.deepcopy({k: v for k, v in own.items() if k != "inherits_from"}))
        return merged


def as_plans(plans: Plans | dict[str, Any] | str | os.PathLike) -> Plans:
    """Our Plans from a Plans (nnU-Net v2's ``PlansManager`` view is one), a plans dict or a plans file."""
    if isinstance(plans, Plans):
        return plans
    if isinstance(plans, dict):
        return Plans.from_dict(plans)
    if isinstance(plans, (str, os.PathLike)):
        return Plans.load(plans)
    raise PlansError(f"expected plans (a Plans, a plans dict or a plans file), got {type(plans).__name__}")


def as_configuration_plans(configuration: Any, name: str = "configuration") -> ConfigurationPlans:
    """Our ConfigurationPlans from one, from a resolved configuration dict, or from nnU-Net v2's
    ``ConfigurationManager`` view (anything with a ``configuration_plans`` attribute)."""
    if isinstance(configuration, ConfigurationPlans):
        return configuration
    inner = getattr(configuration, "configuration_plans", None)
    if isinstance(inner, ConfigurationPlans):
        return inner
    if isinstance(configuration, dict):
        return ConfigurationPlans.from_dict(name, configuration)
    raise PlansError(f"expected a configuration, got {type(configuration).__name__}")
