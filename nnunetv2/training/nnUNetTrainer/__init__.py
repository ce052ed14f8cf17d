"""nnU-Net v2's module path of the trainer (``nnunetv2.training.nnUNetTrainer.nnUNetTrainer``); the trainers live in
``nnunetv2.training.trainers``."""
