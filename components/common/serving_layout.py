"""The TF Serving layout: `<serving_root>/<model_name>/<version>/`, versions being integers."""

import os

# Inside a pushed version: the content key of the base and head it was exported from, so a run
# can tell that the champion is the very model it would push (TF Serving ignores the file).
MODEL_KEY_FILE = ".headstart-model-key"


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


def read_model_key(version_dir: str) -> str | None:
    """The content key a version was pushed with, or None for one pushed without it."""
    path = os.path.join(version_dir, MODEL_KEY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def serving_same_model(serving_root: str, model_name: str, model_key: str) -> str | None:
    """The newest version's directory if it holds the model with this key, else None."""
    newest = latest_version_dir(serving_root, model_name) if serving_root and model_name else None
    return newest if newest and read_model_key(newest) == model_key else None
