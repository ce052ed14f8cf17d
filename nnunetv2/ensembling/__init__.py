"""Averaging the probabilities of several models (nnUNetv2_ensemble) and of cross-validation predictions."""
