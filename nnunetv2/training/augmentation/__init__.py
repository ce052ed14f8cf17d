"""Augmentation pipelines (batchgeneratorsv2 transforms) with nnU-Net v2's defaults."""
