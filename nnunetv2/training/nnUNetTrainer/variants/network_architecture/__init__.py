"""nnU-Net v2's path of its network architecture trainer variants."""
