"""nnU-Net v2's module paths of its trainer variants; the classes live in ``nnunetv2.training.trainers.variants_*``."""
