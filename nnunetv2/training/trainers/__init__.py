"""nnUNetTrainer and its variants; ``-tr NAME`` searches every module of this package."""
