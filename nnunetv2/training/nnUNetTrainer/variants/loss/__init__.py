"""nnU-Net v2's path of its loss trainer variants."""
