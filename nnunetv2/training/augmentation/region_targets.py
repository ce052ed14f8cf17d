"""Label map -> region targets, with any further segmentation channels kept after the regions."""

from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform


class SegmentationToRegionsKeepingExtraChannels(ConvertSegmentationToRegionsTransform):
    """batchgeneratorsv2's region conversion of channel 0, followed by the segmentation's channels 1.. unchanged.

    A one-channel segmentation gives exactly the parent's bool regions. With more channels (e.g. the
    per-voxel confidence of nnUNetTrainerConfidenceWeighted) the result is float32: regions, then the
    other channels, so they go on through deep-supervision downsampling with the targets.
    """

    def __init__(self, regions: list, channel_in_seg: int = 0):
        if channel_in_seg != 0:
            raise ValueError("the label map must be segmentation channel 0")
        super().__init__(regions, channel_in_seg)

    def _apply_to_segmentation(self, segmentation: torch.Tensor, **params) -> torch.Tensor:
        regions = super()._apply_to_segmentation(segmentation, **params)
        if segmentation.shape[0] == 1:
            return regions
        return torch.cat([regions.float(), segmentation[1:].float()])
