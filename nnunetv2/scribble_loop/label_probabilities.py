"""One probability per label value from a network's output, for rules that work on label values.

A label model's softmax already is that. A region model gives one sigmoid probability per region,
and its export paints the regions in ``regions_class_order`` (a region painted later wins). Read as
independent layers, label ``v_k`` (the k-th entry of ``regions_class_order``) is what a voxel shows
when region k is painted and no later region paints over it, and background when no region is:

    P(v_k) = p_k * prod_{j > k} (1 - p_j),        P(0) = prod_j (1 - p_j)

The terms telescope to 1. Label values that no region paints get probability 0. The argmax equals
the export's painting (``p > 0.5``) where the network is sure (e.g. every p_j below 0.1 or above 0.9,
for up to 21 regions); it can differ where a region painted later has a probability a little below
0.5. With two regions they differ exactly where ``m / (1 + m) < p_2 <= 0.5``, ``m = max(p_1, 1 - p_1)``
(so only for p_2 in (1/3, 1/2]): the argmax already shows ``v_2`` there, the painting does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnunetv2.exceptions import DatasetError, NnUNetError

if TYPE_CHECKING:
    from nnunetv2.dataset.label_manager import LabelManager


def label_probabilities(probabilities: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Return ``(L, *spatial)`` probabilities of the label values 0..L-1 (L = highest label value + 1, the ignore
    label not counted) for a network output ``(C, *spatial)``: a label model's softmax unchanged, a region model's
    sigmoid probabilities (one per region, in the order of ``regions_class_order``) converted as the module says."""
    if not label_manager.has_regions:
        return probabilities
    order = [int(v) for v in label_manager.region_order]
    num_values = max(label_manager.all_labels) + 1
    foreign = [v for v in order if v not in label_manager.all_labels]
    if foreign:
        raise DatasetError(
            f"dataset.json: regions_class_order value {foreign[0]} is not a label value ({label_manager.all_labels})"
        )
    if np.shape(probabilities)[0] != len(order):
        raise NnUNetError(
            f"{np.shape(probabilities)[0]} region probability channels, but regions_class_order has "
            f"{len(order)} entries"
        )
    regions = np.asarray(probabilities, dtype=np.float32)
    result = np.zeros((num_values, *regions.shape[1:]), dtype=np.float32)
    # walk from the region painted last: `unpainted` = probability that no region after k paints the voxel
    unpainted = np.ones(regions.shape[1:], dtype=np.float32)
    for region, value in reversed(list(enumerate(order))):
        result[value] += regions[region] * unpainted
        unpainted *= 1.0 - regions[region]
    result[0] += unpainted
    return result
