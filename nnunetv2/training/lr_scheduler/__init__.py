"""nnU-Net v2's module path for learning-rate schedulers; the implementations live in ``training.lr_schedule``."""
