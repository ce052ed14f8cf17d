"""Estimate a network's activation memory the way nnU-Net v2's planner does (feature map voxels)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from nnunetv2.formats.plans import ArchitectureSpec


def conv_feature_map_size(
    architecture: ArchitectureSpec, patch_size: Sequence[int], num_input_channels: int, num_output_channels: int
) -> int:
    """Return the network's ``compute_conv_feature_map_size(patch_size)``.

    Deep supervision is off, as in nnU-Net v2's planner (its reference values assume that). The
    network is built on torch's meta device: no weights are allocated or initialised, which
    makes an estimate ~10x cheaper than a real build; results are cached per architecture.
    """
    key = json.dumps(architecture.to_dict(), sort_keys=True)
    return _cached_estimate(key, tuple(int(p) for p in patch_size), int(num_input_channels), int(num_output_channels))


@functools.lru_cache(maxsize=4096)
def _cached_estimate(
    architecture_json: str, patch_size: tuple[int, ...], num_input_channels: int, num_output_channels: int
) -> int:
    import torch

    from nnunetv2.architectures.network_builder import build_network

    architecture = ArchitectureSpec.from_dict(json.loads(architecture_json))
    with torch.device("meta"):
        network = build_network(architecture, num_input_channels, num_output_channels, deep_supervision=False)
    return int(network.compute_conv_feature_map_size(patch_size))
