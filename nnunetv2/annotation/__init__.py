"""Uncertainty-guided annotation: where to scribble next (worklists) and simulated guided correction."""
