"""Transfer lift: the same head on features of the same architecture with random weights."""
