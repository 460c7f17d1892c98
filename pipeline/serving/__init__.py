"""Serving pushed models: the TF Serving REST API on a local port, prediction, version labels."""
