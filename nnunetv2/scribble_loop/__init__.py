"""Scribble-correction loop: geodesic distance (geodesic.py), pseudo labels with confidence, fine-tuning rounds."""
