"""Sliding-window prediction and export of predictions back to the original image geometry."""
