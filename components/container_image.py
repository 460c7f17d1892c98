"""The one container image every component runs in (docker/Dockerfile builds it)."""

IMAGE = "ghcr.io/headstart-ml/headstart:0.1.0"
# The same image with Beam's worker launcher, which Dataflow starts its workers with
# (docker/Dockerfile.dataflow): preprocess's `--sdk_container_image` on Dataflow.
DATAFLOW_IMAGE = IMAGE + "-dataflow"
