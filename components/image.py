"""The one container image every component runs in (docker/Dockerfile builds it)."""

IMAGE = "ghcr.io/headstart-ml/headstart:0.1.0"
