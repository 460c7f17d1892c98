"""Evaluate: the joined model on the test split, metrics, and the blessing decision."""
