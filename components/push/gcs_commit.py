"""Committing a validated export as the next version under a gs:// model directory.

Cloud Storage has no rename, so a version cannot appear whole. Instead:
1. the version number is claimed by creating `<version>/.headstart-claim` with
   `if_generation_match=0`: of two pushes that pick the same number, exactly one creates it and
   the other moves on to the next number;
2. every file is uploaded with `if_generation_match=0` (nothing is ever overwritten);
3. `saved_model.pb` goes last: until it exists the version is not counted as pushed (see
   `serving_layout.existing_versions`), and a server cannot load it.
"""

import logging
import os

from components.common import gcs
from components.common.serving_layout import SAVED_MODEL_FILE

logger = logging.getLogger(__name__)

CLAIM_FILE = ".headstart-claim"


def _taken_versions(model_dir: str) -> set[int]:
    """Every number under the model directory, pushed or only claimed."""
    return {int(name) for name in gcs.child_names(model_dir) if name.isdigit()}


def _files_saved_model_last(local_dir: str) -> list[str]:
    files = sorted(os.path.relpath(os.path.join(directory, name), local_dir)
                   for directory, _, names in os.walk(local_dir) for name in names)
    return sorted(files, key=lambda path: path == SAVED_MODEL_FILE)


def commit_to_gcs(staging_dir: str, model_dir: str) -> int:
    """Uploads a local export as the next free version of the gs:// model directory; returns it."""
    while True:
        version = max(_taken_versions(model_dir), default=0) + 1
        try:
            gcs.upload_bytes(b"", gcs.join(model_dir, str(version), CLAIM_FILE))
            break
        except gcs.AlreadyExists:
            logger.info("push: version %d was claimed by another push: trying the next", version)
    version_dir = gcs.join(model_dir, str(version))
    for relative in _files_saved_model_last(staging_dir):
        gcs.upload_file(os.path.join(staging_dir, relative), gcs.join(version_dir, *relative.split(os.sep)))
    logger.info("push: uploaded %s", version_dir)
    return version
