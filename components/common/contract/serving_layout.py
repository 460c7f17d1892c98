"""The TF Serving layout: `<serving_root>/<model_name>/<version>/`, versions being integers.

The serving root is a local directory or a gs:// prefix. One rule says which versions exist, for
the champion lookup, the push, `headstart serve` and `headstart predict` alike: an integer name
whose `saved_model.pb` exists. Locally a push makes a version appear whole (a staging directory
is renamed), but a folder copied by hand may lack the file; on Cloud Storage, which has no
rename, a push uploads `saved_model.pb` last (gcs_commit.py), so until then the version is not
counted, and one whose push died never is.

A pushed version also holds `headstart-evaluation.json`, the record of the evaluation that
blessed it (test accuracy, test-set size, labels): the evaluate step holds a challenger to the
best accuracy any blessed version recorded. Versions pushed without one are left out of that.
"""

import json
import logging
import os
import re

from components.common.storage import gcs

logger = logging.getLogger(__name__)

# Inside a pushed version: the content key of the base and head it was exported from, so a run
# can tell that the champion is the very model it would push (TF Serving ignores the file).
MODEL_KEY_FILE = ".headstart-model-key"
SAVED_MODEL_FILE = "saved_model.pb"
# Inside a pushed version: the evaluation that blessed it (TF Serving ignores the file).
EVALUATION_RECORD_FILE = "headstart-evaluation.json"
# ASCII digits only, as TF Serving reads a version folder's name: Python's \d and str.isdigit()
# also take other scripts' digits ("٣", which int() reads as 3) and superscripts ("²", which int()
# refuses).
_PUSHED = re.compile(rf"([0-9]+)/{re.escape(SAVED_MODEL_FILE)}")


def version_number(name: str) -> int | None:
    """The version a folder (or object prefix) name stands for, or None when it is not one."""
    return int(name) if name.isascii() and name.isdigit() else None


def model_directory(serving_root: str, model_name: str) -> str:
    """Where a model's versions live."""
    if gcs.is_gcs(serving_root):
        return gcs.join(serving_root, model_name)
    return os.path.join(os.path.abspath(serving_root), model_name)


def holds_saved_model(version_dir: str) -> bool:
    """Whether a version directory (or gs:// prefix) holds its `saved_model.pb`, the mark of a whole version."""
    path = _join(version_dir, SAVED_MODEL_FILE)
    return gcs.exists(path) if gcs.is_gcs(version_dir) else os.path.isfile(path)


def _pushed_versions(object_names) -> list[int]:
    """The versions a gs:// listing shows whole: those with an `<N>/saved_model.pb` object."""
    return sorted({int(match.group(1)) for name in object_names if (match := _PUSHED.fullmatch(name))})


def existing_versions(model_dir: str) -> list[int]:
    """The version numbers pushed under a model directory, ascending.

    A version counts when its name is an integer, as for TF Serving (staging directories and
    claims are hidden from it), and it holds `saved_model.pb`: an incomplete version, being
    uploaded or left by a push that died, is neither served nor taken for the champion.
    """
    if gcs.is_gcs(model_dir):
        return _pushed_versions(name for name, _ in gcs.list_objects(model_dir))
    if not os.path.isdir(model_dir):
        return []
    return sorted(version_number(name) for name in os.listdir(model_dir)
                  if version_number(name) is not None and holds_saved_model(os.path.join(model_dir, name)))


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


def holds_model(version_dir: str | None, model_key: str) -> bool:
    """Whether a pushed version holds the model with this content key."""
    return bool(version_dir) and read_model_key(version_dir) == model_key


def serving_same_model(serving_root: str, model_name: str, model_key: str) -> str | None:
    """The newest version's directory if it holds the model with this key, else None."""
    newest = latest_version_dir(serving_root, model_name) if serving_root and model_name else None
    return newest if holds_model(newest, model_key) else None


def evaluation_record(*, accuracy: float, test_count: int, labels: list[str], run_id: str = "") -> dict:
    """The record a push writes into a version as `EVALUATION_RECORD_FILE`.

    Args:
        accuracy: the test accuracy that blessed the model.
        test_count: how many test images that accuracy was measured on.
        labels: the class names, in the model's order; only versions with the same classes compare.
        run_id: the pipeline run that pushed it, for people.
    """
    return {"accuracy": float(accuracy), "test_count": int(test_count), "labels": list(labels), "run_id": run_id}


def read_evaluation_records(model_dir: str) -> dict[int, dict]:
    """The evaluation record of every pushed version that has one, by version number.

    Only whole versions count (see `existing_versions`). A version pushed without a record is
    left out, and so, with a warning, is a record that does not read as one: a damaged file must
    not stop a run, and leaving it out only loosens the guard that reads them.
    """
    if gcs.is_gcs(model_dir):
        listed = {name for name, _ in gcs.list_objects(model_dir)}  # one listing for versions and records
        found = {version: gcs.join(model_dir, str(version), EVALUATION_RECORD_FILE)
                 for version in _pushed_versions(listed) if f"{version}/{EVALUATION_RECORD_FILE}" in listed}
        read = gcs.read_bytes
    else:
        found = {version: path for version in existing_versions(model_dir)
                 if os.path.isfile(path := os.path.join(model_dir, str(version), EVALUATION_RECORD_FILE))}

        def read(path: str) -> bytes:
            with open(path, "rb") as f:
                return f.read()

    records = {}
    for version, path in found.items():
        try:
            raw = json.loads(read(path))
            record = evaluation_record(accuracy=raw["accuracy"], test_count=raw["test_count"],
                                       labels=[str(label) for label in raw["labels"]],
                                       run_id=str(raw.get("run_id", "")))
            if not 0 <= record["accuracy"] <= 1 or record["test_count"] < 1:
                raise ValueError(f"accuracy {record['accuracy']} or test_count {record['test_count']} out of range")
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("serving: version %d's %s is not a readable record, left out: %s",
                           version, EVALUATION_RECORD_FILE, error)
            continue
        records[version] = record
    return records
