"""nnU-Net v2's ``nnunetv2.utilities.label_handling.label_handling``: an alias of our label handling.

Our LabelManager (``nnunetv2.dataset.label_manager``) has nnU-Net v2's properties and method names
(``apply_inference_nonlin``, ``convert_probabilities_to_segmentation``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager

__all__ = [
    "LabelManager",
    "convert_labelmap_to_one_hot",
    "determine_num_input_channels",
    "get_labelmanager_class_from_plans",
]


def get_labelmanager_class_from_plans(plans: dict[str, Any]) -> type[LabelManager]:
    """Our LabelManager (the only one; nnU-Net v2 looks the plans' ``label_manager`` name up)."""
    return LabelManager


def convert_labelmap_to_one_hot(segmentation, all_labels, output_dtype=None):
    """``(len(all_labels), ...)`` one-hot of a label map (numpy or torch, as given)."""
    import torch

    if isinstance(segmentation, torch.Tensor):
        dtype = output_dtype or (torch.uint8 if max(all_labels) < 255 else torch.uint16)
        labels = torch.as_tensor(list(all_labels), device=segmentation.device).reshape(-1, *[1] * segmentation.ndim)
        return (segmentation[None] == labels).to(dtype)
    dtype = output_dtype or (np.uint8 if max(all_labels) < 255 else np.uint16)
    labels = np.asarray(list(all_labels)).reshape(-1, *[1] * np.ndim(segmentation))
    return (np.asarray(segmentation)[None] == labels).astype(dtype)


def determine_num_input_channels(plans_manager, configuration_or_config_manager, dataset_json: dict) -> int:
    """Image channels, plus one per foreground label for a cascade stage."""
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import as_configuration_plans, as_plans
    from nnunetv2.inference.trained_model import num_input_channels

    if isinstance(configuration_or_config_manager, str):
        configuration = as_plans(plans_manager).configuration(configuration_or_config_manager)
    else:
        configuration = as_configuration_plans(configuration_or_config_manager)
    dataset = dataset_json if isinstance(dataset_json, DatasetJson) else DatasetJson.from_dict(dataset_json)
    return num_input_channels(configuration, dataset, LabelManager.from_dataset_json(dataset))
