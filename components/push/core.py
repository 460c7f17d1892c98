"""Push core: export the blessed model into `<serving_root>/<model_name>/<version>/`.

The export is written into a hidden staging directory beside the versions (TF Serving ignores
names that are not integers), checked by loading it and answering real test images, and only
then renamed to the next version number. A rename onto an existing non-empty directory fails, so
two pushes at once end as two versions, never one overwritten.
"""

import errno
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from components.common import storage
from components.common.modeling import class_probabilities, load_joined_model
from components.evaluate.core import BLESSING
from components.extract_features.core import image_batches
from components.ingest import core as ingest_core
from components.push.export import export_serving_model

logger = logging.getLogger(__name__)

PUSH_RESULT = "push.json"
# Images answered by the staged export before it may become a version.
CHECK_IMAGES = 4


@dataclass(frozen=True)
class PushResult:
    """Whether the model was pushed, where, and why (not)."""

    pushed: bool
    uri: str | None
    version: int | None
    reason: str


def existing_versions(model_dir: str) -> list[int]:
    """The version numbers present under a model directory, ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def _check_export(export_dir: str, model, examples_dir: str, image_size: int) -> None:
    """Loads the staged export and checks it answers real test images as the model does."""
    images, _ = next(iter(image_batches(examples_dir, "test", image_size, CHECK_IMAGES)))
    encoded = tf.stack([tf.io.encode_png(tf.cast(image, tf.uint8)) for image in images])
    served = tf.saved_model.load(export_dir).signatures["serving_default"](image_bytes=encoded)
    expected = class_probabilities(model(images, training=False)).numpy()
    difference = float(np.abs(served["probabilities"].numpy() - expected).max())
    if difference > 1e-4:
        raise RuntimeError(f"the exported model disagrees with the evaluated one by {difference:.2e}")


def _commit(staging_dir: str, model_dir: str) -> int:
    """Renames the staging directory to the next free version number; returns it."""
    while True:
        version = (existing_versions(model_dir) or [0])[-1] + 1
        try:
            os.rename(staging_dir, os.path.join(model_dir, str(version)))
            return version
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Another push took this version first: take the next one.


def run(*, evaluation_dir: str, examples_dir: str, base_model_path: str, head_model_path: str,
        serving_root: str, model_name: str, output_dir: str) -> PushResult:
    """Pushes the model when the evaluation blessed it; otherwise leaves serving untouched."""
    if not model_name or os.sep in model_name or model_name.startswith("."):
        raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
    blessing = storage.read_json(os.path.join(evaluation_dir, BLESSING))
    if not blessing["blessed"]:
        result = PushResult(False, None, None, f"not blessed: {blessing['reason']}")
    else:
        image_size = storage.read_json(os.path.join(examples_dir, "stats.json"))["image_size"]
        labels = storage.read_lines(os.path.join(examples_dir, ingest_core.LABELS))
        model_dir = os.path.join(os.path.abspath(serving_root), model_name)
        os.makedirs(model_dir, exist_ok=True)
        staging_dir = tempfile.mkdtemp(dir=model_dir, prefix=".staging-")
        try:
            model = load_joined_model(base_model_path, head_model_path)
            export_serving_model(model, labels, image_size, staging_dir)
            _check_export(staging_dir, model, examples_dir, image_size)
            os.chmod(staging_dir, 0o755)
            version = _commit(staging_dir, model_dir)
        finally:
            shutil.rmtree(staging_dir, ignore_errors=True)
        uri = os.path.join(model_dir, str(version))
        result = PushResult(True, uri, version, f"{blessing['reason']}; pushed version {version}")
    os.makedirs(output_dir, exist_ok=True)
    storage.write_json(
        os.path.join(output_dir, PUSH_RESULT),
        {"pushed": result.pushed, "uri": result.uri, "version": result.version, "reason": result.reason},
    )
    logger.info("push: %s", result.reason if not result.pushed else f"pushed {result.uri}")
    return result
