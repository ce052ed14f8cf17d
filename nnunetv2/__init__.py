"""Self-configuring U-Net segmentation (nnU-Net v2 compatible) with sparse-label extensions."""

# nnU-Net v2 release whose API and formats this matches, + our own release (documentation/compatibility.md)
__version__ = "2.8.1+sparse.1"
