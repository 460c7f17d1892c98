"""The TF Serving layout: `<serving_root>/<model_name>/<version>/`, versions being integers.

The serving root is a local directory or a gs:// prefix. One rule says which versions exist, for
the champion lookup, the push, `headstart serve` and `headstart predict` alike: an integer name
whose `saved_model.pb` exists. Locally a push makes a version appear whole (a staging directory
is renamed), but a folder copied by hand may lack the file; on Cloud Storage, which has no
rename, a push uploads `saved_model.pb` last (gcs_commit.py), so until then the version is not
counted, and one whose push died never is.
"""

import os
import re

from components.common import gcs

# Inside a pushed version: the content key of the base and head it was exported from, so a run
# can tell that the champion is the very model it would push (TF Serving ignores the file).
MODEL_KEY_FILE = ".headstart-model-key"
SAVED_MODEL_FILE = "saved_model.pb"
_PUSHED = re.compile(rf"(\d+)/{re.escape(SAVED_MODEL_FILE)}")


def model_directory(serving_root: str, model_name: str) -> str:
    """Where a model's versions live."""
    if gcs.is_gcs(serving_root):
        return gcs.join(serving_root, model_name)
    return os.path.join(os.path.abspath(serving_root), model_name)


def holds_saved_model(version_dir: str) -> bool:
    """Whether a version directory (or gs:// prefix) holds its `saved_model.pb`, the mark of a whole version."""
    path = _join(version_dir, SAVED_MODEL_FILE)
    return gcs.exists(path) if gcs.is_gcs(version_dir) else os.path.isfile(path)


def existing_versions(model_dir: str) -> list[int]:
    """The version numbers pushed under a model directory, ascending.

    A version counts when its name is an integer, as for TF Serving (staging directories and
    claims are hidden from it), and it holds `saved_model.pb`: an incomplete version, being
    uploaded or left by a push that died, is neither served nor taken for the champion.
    """
    if gcs.is_gcs(model_dir):
        return sorted({int(match.group(1)) for name, _ in gcs.list_objects(model_dir)
                       if (match := _PUSHED.fullmatch(name))})
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)
                  if name.isdigit() and holds_saved_model(os.path.join(model_dir, name)))


def latest_version_dir(serving_root: str, model_name: str) -> str | None:
    """The newest version's directory (or gs:// prefix), or None when the model has none yet."""
    model_dir = model_directory(serving_root, model_name)
    versions = existing_versions(model_dir)
    return _join(model_dir, str(versions[-1])) if versions else None


def _join(directory: str, name: str) -> str:
    return gcs.join(directory, name) if gcs.is_gcs(directory) else os.path.join(directory, name)


def read_model_key(version_dir: str) -> str | None:
    """The content key a version was pushed with, or None for one pushed without it."""
    path = _join(version_dir, MODEL_KEY_FILE)
    if gcs.is_gcs(version_dir):
        return gcs.read_bytes(path).decode().strip() if gcs.exists(path) else None
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def serving_same_model(serving_root: str, model_name: str, model_key: str) -> str | None:
    """The newest version's directory if it holds the model with this key, else None."""
    newest = latest_version_dir(serving_root, model_name) if serving_root and model_name else None
    return newest if newest and read_model_key(newest) == model_key else None
