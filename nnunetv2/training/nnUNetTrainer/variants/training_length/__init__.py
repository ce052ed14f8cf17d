"""nnU-Net v2's path of its training length trainer variants."""
