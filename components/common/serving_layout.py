"""The TF Serving layout: `<serving_root>/<model_name>/<version>/`, versions being integers."""

import os


def model_directory(serving_root: str, model_name: str) -> str:
    """Where a model's versions live."""
    return os.path.join(os.path.abspath(serving_root), model_name)


def existing_versions(model_dir: str) -> list[int]:
    """The version numbers present under a model directory, ascending.

    Only integer names count, as for TF Serving: staging directories are hidden from it.
    """
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def latest_version_dir(serving_root: str, model_name: str) -> str | None:
    """The newest version's directory, or None when the model has none yet."""
    model_dir = model_directory(serving_root, model_name)
    versions = existing_versions(model_dir)
    return os.path.join(model_dir, str(versions[-1])) if versions else None
