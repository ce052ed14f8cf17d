"""nnU-Net v2's module path, kept as an alias of our own module (documentation/compatibility.md)."""
