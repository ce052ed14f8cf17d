"""Looking at results: overlay PNGs (labels, uncertainty, scribbles, worklist boxes) and an HTML report."""
