"""Train head: a small MLP trained on the cached feature vectors."""
