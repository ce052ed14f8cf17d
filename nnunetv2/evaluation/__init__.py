"""Metrics (Dice, IoU, TP/FP/FN/TN) of predicted segmentations and summary.json."""
