"""U-Net topology from (spacing, patch size): strides, conv kernel sizes, padded patch (nnU-Net v2's rule)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# nnU-Net passes "no limit" for the number of poolings per axis
UNLIMITED_POOLINGS = 999999


@dataclass(frozen=True)
class NetworkTopology:
    """Per-stage strides and conv kernels of a U-Net, and the patch padded to fit its poolings."""

    strides: list[list[int]]
    conv_kernel_sizes: list[list[int]]
    patch_size: list[int]
    shape_must_be_divisible_by: list[int]
    num_pool_per_axis: list[int]

    @property
    def n_stages(self) -> int:
        """Number of resolution stages (poolings + 1)."""
        return len(self.strides)


def pad_to_multiple(shape: Sequence[float], divisor: Sequence[int]) -> list[int]:
    """Return ``shape`` rounded up per axis to the next multiple of ``divisor`` (fractions round up too)."""
    return [int(math.ceil(s / d) * d) for s, d in zip(shape, divisor)]


def compute_network_topology(
    spacing: Sequence[float],
    patch_size: Sequence[float],
    min_feature_map_edge_length: int = 4,
    max_num_pool: int = UNLIMITED_POOLINGS,
) -> NetworkTopology:
    """Return the topology nnU-Net v2 derives for a patch at a spacing.

    Each round pools the axes that are still at least 2x ``min_feature_map_edge_length`` long
    and whose spacing is within 2x of the finest among them (a lone axis must be 3x long).
    An axis' conv kernel turns from 1 to 3 once its spacing is within 2x of the finest.
    """
    dim = len(spacing)
    current_spacing = [float(s) for s in spacing]
    current_size = [float(s) for s in patch_size]
    strides = [[1] * dim]
    conv_kernel_sizes = []
    num_pool_per_axis = [0] * dim
    kernel = [1] * dim
    while True:
        candidates = [a for a in range(dim) if current_size[a] >= 2 * min_feature_map_edge_length]
        if not candidates:
            break
        finest_candidate = min(current_spacing[a] for a in candidates)
        candidates = [
            a for a in candidates if current_spacing[a] / finest_candidate < 2 and num_pool_per_axis[a] < max_num_pool
        ]
        if not candidates:
            break
        # pooling a single axis alone would leave a too thin bottleneck unless it is long enough
        if len(candidates) == 1 and current_size[candidates[0]] < 3 * min_feature_map_edge_length:
            break
        finest = min(current_spacing)
        kernel = [3 if k == 3 or current_spacing[a] / finest < 2 else 1 for a, k in enumerate(kernel)]
        stride = [1] * dim
        for a in candidates:
            stride[a] = 2
            num_pool_per_axis[a] += 1
            current_spacing[a] *= 2
            current_size[a] = math.ceil(current_size[a] / 2)
        strides.append(stride)
        conv_kernel_sizes.append(list(kernel))
    conv_kernel_sizes.append([3] * dim)  # the bottleneck always convolves along every axis
    divisible_by = [2**n for n in num_pool_per_axis]
    return NetworkTopology(
        strides=strides,
        conv_kernel_sizes=conv_kernel_sizes,
        patch_size=pad_to_multiple(patch_size, divisible_by),
        shape_must_be_divisible_by=divisible_by,
        num_pool_per_axis=num_pool_per_axis,
    )
