"""nnU-Net v2's path of its benchmarking trainer variants."""
