"""Submitting and scheduling runs on a KFP cluster or Vertex AI, and what a pod can reach."""
