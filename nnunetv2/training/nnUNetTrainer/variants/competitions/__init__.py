"""nnU-Net v2's path of its competitions trainer variants."""
