"""nnU-Net v2's path of its sampling trainer variants."""
