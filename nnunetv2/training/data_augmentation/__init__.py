"""nnU-Net v2's module path for augmentation helpers; the implementations live in ``training.augmentation``."""
