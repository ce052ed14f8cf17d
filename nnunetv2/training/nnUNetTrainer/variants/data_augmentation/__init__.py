"""nnU-Net v2's path of its data augmentation trainer variants."""
