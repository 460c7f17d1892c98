"""The Beam preprocess step reading and writing gs:// paths with Beam's own IO (as on Dataflow),
run here with the DirectRunner against gcp-storage-emulator, which answers Beam's batch requests.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from components.common import gcs
from components.ingest import core as ingest_core
from components.preprocess import core as preprocess_core

EMULATOR = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def beam_emulator(tmp_path, monkeypatch):
    port = free_port()
    server = subprocess.Popen([EMULATOR, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory",
                               "--default-bucket=pipeline"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    # Without credentials Beam waits about 25 s for a metadata server before going anonymous.
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "test", "client_secret": "test",
                                       "refresh_token": "test", "token": "test", "expiry": "2999-01-01T00:00:00Z"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "gcp-storage-emulator did not start"
            time.sleep(0.2)
    yield
    server.terminate()
    server.wait(timeout=30)


def test_preprocess_reads_and_writes_cloud_storage_through_beam(beam_emulator, image_tree, tmp_path):
    ingest_core.run(source=str(image_tree), output_dir=str(tmp_path / "raw"))
    for name in os.listdir(tmp_path / "raw"):
        gcs.upload_file(str(tmp_path / "raw" / name), f"gs://pipeline/run-1/raw/{name}")

    result = preprocess_core.run(raw_dir="gs://pipeline/run-1/raw", output_dir="gs://pipeline/run-1/examples",
                                 image_size=16, train_fraction=0.6, eval_fraction=0.2)

    assert sum(sum(counts.values()) for counts in result.counts.values()) == 40
    names = {name for name, _ in gcs.list_objects("gs://pipeline/run-1/examples")}
    assert {"stats.json", "labels.txt"} <= names
    assert {split for split in ("train", "eval", "test") if any(n.startswith(f"{split}-") for n in names)} == \
        {"train", "eval", "test"}
    stats = json.loads(gcs.read_bytes("gs://pipeline/run-1/examples/stats.json"))
    assert stats["counts"] == result.counts and stats["image_size"] == 16
