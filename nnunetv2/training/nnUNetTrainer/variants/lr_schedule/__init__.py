"""nnU-Net v2's path of its lr schedule trainer variants."""
