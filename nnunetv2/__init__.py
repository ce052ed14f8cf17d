"""Self-configuring U-Net segmentation (nnU-Net v2 compatible) with sparse-label extensions."""

__version__ = "0.1.0"
