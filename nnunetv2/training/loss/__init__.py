"""Segmentation losses: soft Dice, Dice + (B)CE, deep supervision, ignore-label masking."""
