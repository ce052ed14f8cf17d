"""nnU-Net v2's path of its optimizer trainer variants."""
