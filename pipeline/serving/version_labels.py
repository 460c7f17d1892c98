"""Version labels: names such as `stable` and `canary` for pushed versions, kept as TF Serving reads them.

`headstart label` writes `<serving_root>/<model_name>/models.config`, a `ModelServerConfig` in
protobuf text format (the tensorflow-serving-api protos), which TF Serving takes with
`--model_config_file`. It holds the model's base path, a `specific` version policy that loads
the labelled versions and the newest one, and `version_labels`. TF Serving and `headstart serve`
then both answer `/v1/models/NAME/labels/LABEL:predict`. TF Serving ignores a file in the model
directory whose name is not a number, so the file sits beside the versions it names.
"""

import os
import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components.common.contract.serving_layout import existing_versions, model_directory
from components.common.storage import atomic_files, gcs

MODEL_CONFIG_FILE = "models.config"
# TF Serving takes any string; names a URL path and a shell both carry unquoted.
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def config_path(serving_root: str, model_name: str) -> str:
    """Where a model's TF Serving model config lives."""
    model_dir = model_directory(serving_root, model_name)
    join = gcs.join if gcs.is_gcs(model_dir) else os.path.join
    return join(model_dir, MODEL_CONFIG_FILE)


def read_labels(serving_root: str, model_name: str) -> dict[str, int]:
    """The model's labels and the version each names; none when no config was written.

    Raises:
        ValueError: the config file is not a TF Serving model config that names this model.
    """
    path = config_path(serving_root, model_name)
    if gcs.is_gcs(path):
        if not gcs.exists(path):
            return {}
        text = gcs.read_bytes(path).decode()
    elif not os.path.exists(path):
        return {}
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{path} is not a TF Serving model config: {error}") from error
    for model in config.model_config_list.config:
        if model.name == model_name:
            return dict(sorted(model.version_labels.items()))
    raise ValueError(f"{path} has no entry for model {model_name!r}")


def check_label(label: str) -> str:
    """The label, when it is a name TF Serving and a URL carry as is; else ValueError naming the rule."""
    if not _LABEL.fullmatch(label):
        raise ValueError(f"label {label!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
    return label


def set_label(serving_root: str, model_name: str, label: str, version: int | None) -> dict[str, int]:
    """Points `label` at a pushed `version`, or removes it when version is None; returns every label.

    Raises:
        ValueError: a bad label name, a version that was never pushed, or removing a label that
            does not exist.
    """
    check_label(label)
    labels = read_labels(serving_root, model_name)
    versions = existing_versions(model_directory(serving_root, model_name))
    if version is None:
        if label not in labels:
            raise ValueError(f"{model_name!r} has no label {label!r}; its labels are {labels or 'none'}")
        del labels[label]
    elif version not in versions:
        raise ValueError(f"{model_name!r} has no version {version}; its versions are {versions or 'none yet'}")
    else:
        labels[label] = version
    _write_config(serving_root, model_name, labels, versions)
    return dict(sorted(labels.items()))


def _write_config(serving_root: str, model_name: str, labels: dict[str, int], versions: list[int]) -> None:
    model_dir = model_directory(serving_root, model_name)
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(
        name=model_name, base_path=model_dir if gcs.is_gcs(model_dir) else os.path.abspath(model_dir),
        model_platform="tensorflow")
    if labels:
        # TF Serving only labels versions it has loaded: load the labelled ones and the newest.
        model.model_version_policy.specific.versions.extend(sorted(set(labels.values()) | set(versions[-1:])))
        for name, version in sorted(labels.items()):
            model.version_labels[name] = version
    text = text_format.MessageToString(config)
    path = config_path(serving_root, model_name)
    if gcs.is_gcs(path):
        gcs.upload_bytes(text.encode(), path, overwrite=True)
    else:
        atomic_files.write_text(path, text)
