"""End to end with Cloud Storage: source and serving root in buckets of a real emulator.

The steps still read and write local artifact paths (kfp.local's pipeline root); ingest reads
the gs:// source and push uploads the validated export to the gs:// serving root. (Scoring a
champion downloaded from a bucket is tested in tests/integration/test_gcs.py.)
"""

import json
import os
import subprocess
import sys

import pytest

from components.common.contract.serving_layout import existing_versions
from components.common.storage import gcs
from pipeline.devtools.storage_emulator import cloud_storage_emulator
from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.unit.helpers import IMAGE_SIZE, save_tiny_base

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


@pytest.fixture(scope="module")
def buckets(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gcs_run")
    with cloud_storage_emulator("photos", "models"):
        for label, color in CLASS_COLORS.items():
            for index in range(24):
                path = write_image(tmp_path / "tree" / label / f"{label}_{index}.png",
                                   make_image(color, seed=index + 50 * len(label)))
                gcs.upload_file(str(path), f"gs://photos/tree/{label}/{path.name}")
        save_tiny_base(str(tmp_path / "base.keras"))
        yield tmp_path


SECRET = "headstart-test-secret-7f3c9a"


def run(tmp_path):
    command = [
        HEADSTART, "run", "--source", "gs://photos/tree", "--serving-root", "gs://models",
        "--model-name", "colors", "--base-model", str(tmp_path / "base.keras"),
        "--image-size", str(IMAGE_SIZE), "--epochs", "5", "--fine-tune-mode", "off",
        "--pipeline-root", str(tmp_path / "runs"), "--summary", str(tmp_path / "s.json"),
    ]
    # Credentials in the environment, as on a real machine: they must never reach a log or artifact.
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "id", "client_secret": SECRET,
                                       "refresh_token": SECRET, "token": SECRET,
                                       "expiry": "2999-01-01T00:00:00Z"}))
    env = {**os.environ, "GOOGLE_APPLICATION_CREDENTIALS": str(credentials), "HEADSTART_TOKEN": SECRET}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert SECRET not in completed.stdout + completed.stderr
    return json.loads((tmp_path / "s.json").read_text())


def test_a_run_reads_its_source_from_a_bucket_and_pushes_to_one(buckets):
    summary = run(buckets)
    assert all(step["status"] == "SUCCESS" for step in summary["steps"].values())
    assert sum(sum(counts.values()) for counts in summary["counts"].values()) == 48
    assert summary["blessed"] and summary["pushed_uri"] == "gs://models/colors/1"
    names = {name for name, _ in gcs.list_objects("gs://models/colors/1")}
    assert {"saved_model.pb", "model_card.md", "variables/variables.index"} <= names
    assert existing_versions("gs://models/colors") == [1]
    # No credential in the run's log, artifacts, cache or summary, nor in what was pushed.
    for directory, _, names in os.walk(buckets / "runs"):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                assert SECRET.encode() not in open(path, "rb").read(), path
    assert SECRET not in (buckets / "s.json").read_text()
    assert all(SECRET.encode() not in gcs.read_bytes(f"gs://models/colors/1/{name}")
               for name, _ in gcs.list_objects("gs://models/colors/1"))

