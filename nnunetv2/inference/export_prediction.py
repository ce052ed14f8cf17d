"""nnU-Net v2's ``nnunetv2.inference.export_prediction``: an alias of ``nnunetv2.inference.export``.

nnU-Net v2's argument order; plans and configuration may be ``PlansManager`` /
``ConfigurationManager`` or our own objects. ``num_threads_torch`` is accepted and ignored.
"""

from __future__ import annotations

from nnunetv2.inference.export import convert_logits_to_segmentation_with_correct_shape, export_prediction_from_logits

__all__ = ["convert_predicted_logits_to_segmentation_with_correct_shape", "export_prediction_from_logits"]


def convert_predicted_logits_to_segmentation_with_correct_shape(
    predicted_logits,
    plans_manager,
    configuration_manager,
    label_manager,
    properties_dict: dict,
    return_probabilities: bool = False,
    num_threads_torch: int | None = None,
):
    """Segmentation (and probabilities) in the original geometry, from logits in preprocessed geometry."""
    return convert_logits_to_segmentation_with_correct_shape(
        predicted_logits, properties_dict, configuration_manager, plans_manager, label_manager, return_probabilities
    )
