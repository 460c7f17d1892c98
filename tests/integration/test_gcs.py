"""Cloud Storage through the real google-cloud-storage client against a real emulator
(fake-gcs-server, started here): listing, digests, no-overwrite uploads, versions committed by
concurrent pushes, a gs:// source ingested, and clear failures when the service is gone.
"""

import os
import socket
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.contract.serving_layout import existing_versions, latest_version_dir
from components.common.storage import gcs
from components.evaluate.core import score_champion
from components.ingest import core as ingest_core
from components.ingest.source_digest import source_digest
from components.push.export import export_serving_model
from components.push.gcs_commit import claim_uri, commit_to_gcs
from pipeline.devtools.storage_emulator import cloud_storage_emulator
from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.unit.helpers import IMAGE_SIZE, prepared_examples


@pytest.fixture(scope="module")
def emulator():
    with cloud_storage_emulator("photos", "models") as url:
        yield url


def upload_tree(local_root, uri):
    for directory, _, names in os.walk(local_root):
        for name in names:
            path = os.path.join(directory, name)
            gcs.upload_file(path, gcs.join(uri, os.path.relpath(path, local_root)), overwrite=True)


def fake_export(tmp_path, marker: str):
    export = tmp_path / f"export-{marker}"
    (export / "variables").mkdir(parents=True)
    (export / "variables" / "variables.index").write_text(marker)
    (export / "saved_model.pb").write_text(marker)
    return str(export)


def test_uploads_never_overwrite_unless_asked(emulator, tmp_path):
    (tmp_path / "a").write_text("first")
    gcs.upload_file(str(tmp_path / "a"), "gs://photos/once/a")
    (tmp_path / "a").write_text("second")
    with pytest.raises(gcs.AlreadyExists, match="gs://photos/once/a: already exists"):
        gcs.upload_file(str(tmp_path / "a"), "gs://photos/once/a")
    assert gcs.read_bytes("gs://photos/once/a") == b"first"


def test_many_objects_move_at_once_with_the_same_preconditions(emulator, tmp_path):
    files = []
    for index in range(30):
        path = tmp_path / "many" / f"part-{index // 10}" / f"{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([index]) * 100)
        files.append((str(path), f"gs://photos/many/part-{index // 10}/{index}.bin"))
    gcs.upload_many(files)
    assert gcs.download_tree("gs://photos/many", str(tmp_path / "back")) == 30
    assert (tmp_path / "back" / "part-2" / "29.bin").read_bytes() == bytes([29]) * 100
    (tmp_path / "many" / "part-0" / "3.bin").write_bytes(b"changed")
    with pytest.raises(gcs.AlreadyExists, match="gs://photos/many/part-0/.*: already exists"):
        gcs.upload_many(files)
    assert gcs.read_bytes("gs://photos/many/part-0/3.bin") == bytes([3]) * 100
    gcs.upload_many(files, overwrite=True)
    assert gcs.read_bytes("gs://photos/many/part-0/3.bin") == b"changed"


def test_concurrent_pushes_commit_distinct_complete_versions(emulator, tmp_path):
    model_dir = "gs://models/race"
    exports = [fake_export(tmp_path, f"push-{index}") for index in range(4)]
    versions, errors = [], []

    def push(export):
        try:
            versions.append(commit_to_gcs(export, model_dir))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=push, args=(export,)) for export in exports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(versions) == [1, 2, 3, 4]
    assert existing_versions(model_dir) == [1, 2, 3, 4]
    markers = {gcs.read_bytes(f"{model_dir}/{v}/saved_model.pb") for v in versions}
    assert markers == {f"push-{index}".encode() for index in range(4)}  # none overwritten
    for version in versions:
        assert gcs.read_bytes(f"{model_dir}/{version}/variables/variables.index") == \
            gcs.read_bytes(f"{model_dir}/{version}/saved_model.pb")


def test_a_claimed_version_without_its_saved_model_is_not_served(emulator, tmp_path):
    model_dir = "gs://models/half"
    commit_to_gcs(fake_export(tmp_path, "one"), model_dir)
    # A push that died after claiming version 2 and uploading its variables.
    gcs.upload_bytes(b"", claim_uri(model_dir, 2))
    gcs.upload_bytes(b"partial", f"{model_dir}/2/variables/variables.index")
    assert existing_versions(model_dir) == [1]
    assert latest_version_dir("gs://models", "half") == f"{model_dir}/1"
    assert commit_to_gcs(fake_export(tmp_path, "three"), model_dir) == 3  # 2 stays skipped


def test_a_gs_source_is_ingested_with_its_origins_and_digested_without_download(emulator, tmp_path):
    for label, color in CLASS_COLORS.items():
        for index in range(3):
            write_image(tmp_path / "tree" / label / f"{label} {index}.png", make_image(color, seed=index))
    upload_tree(tmp_path / "tree", "gs://photos/tree")
    digest = source_digest("gs://photos/tree")

    result = ingest_core.run(source="gs://photos/tree", output_dir=str(tmp_path / "raw"))
    assert result.count == 6 and result.labels == ("blue", "red")
    records = tf.data.TFRecordDataset(sorted(str(p) for p in (tmp_path / "raw").glob("examples-*.tfrecord")))
    origins = {tf.train.Example.FromString(r.numpy()).features.feature["origin"].bytes_list.value[0].decode()
               for r in records}
    assert "gs://photos/tree/red/red 0.png" in origins and len(origins) == 6

    assert source_digest("gs://photos/tree") == digest
    write_image(tmp_path / "new.png", make_image((0, 200, 0), seed=5))
    gcs.upload_file(str(tmp_path / "new.png"), "gs://photos/tree/red/red 0.png", overwrite=True)
    assert source_digest("gs://photos/tree") != digest


def test_an_unreachable_service_fails_with_a_message_naming_the_uri(monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on: the service is gone
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv(gcs.RETRY_SECONDS_ENV, "2")
    with pytest.raises(gcs.RemoteStorageError, match=r"gs://photos/tree: listing failed after retrying for up to 2 s"):
        list(gcs.list_objects("gs://photos/tree"))


def test_a_champion_in_a_bucket_is_downloaded_and_scored_like_a_local_one(emulator, image_tree, tmp_path):
    examples_dir = prepared_examples(image_tree, tmp_path)
    # A fixed model that tells red from blue: mean red minus mean blue, through a sigmoid.
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(images, dense(pooled))
    dense.set_weights([np.array([[0.05], [0.0], [-0.05]], dtype="float32"), np.zeros(1, dtype="float32")])
    export_serving_model(model, ["blue", "red"], IMAGE_SIZE, str(tmp_path / "export"))
    upload_tree(tmp_path / "export", "gs://models/colors/3")

    local, *_ = score_champion(str(tmp_path / "export"), examples_dir, IMAGE_SIZE, ["blue", "red"], 8, version=3)
    remote, *_ = score_champion("gs://models/colors/3", examples_dir, IMAGE_SIZE, ["blue", "red"], 8)
    assert remote == {**local, "uri": "gs://models/colors/3"}
    assert remote["version"] == 3 and remote["accuracy"] == 1.0


class FlakyFront:
    """An HTTP front for the emulator that answers the first `failures` requests with 503."""

    def __init__(self, backend: str, failures: int):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        self.failures, self.answered_503 = failures, 0
        front, target = self, urlparse(backend)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if front.answered_503 < front.failures:
                    front.answered_503 += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_service_answering_503_is_retried_with_backoff_until_it_answers(emulator, monkeypatch, tmp_path):
    (tmp_path / "x").write_text("kept")
    gcs.upload_file(str(tmp_path / "x"), "gs://photos/flaky/x")
    front = FlakyFront(os.environ["STORAGE_EMULATOR_HOST"], failures=3)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", front.url)
    try:
        assert [name for name, _ in gcs.list_objects("gs://photos/flaky")] == ["x"]
        front.failures += 2
        assert gcs.read_bytes("gs://photos/flaky/x") == b"kept"
    finally:
        front.server.shutdown()
    assert front.answered_503 == 5


def test_a_base_network_in_a_bucket_is_fetched_and_keyed_by_its_content(emulator, tmp_path):
    """A pod has no local copy of the base: extraction fetches it, and its cache key follows its bytes."""
    from components.common.model.base_network import BaseNetworkSpec, build_feature_extractor
    from components.common.storage.step_cache import path_digest
    from tests.unit.helpers import save_tiny_base

    uri = "gs://models/bases/tiny.keras"
    gcs.upload_file(save_tiny_base(str(tmp_path / "tiny.keras")), uri)
    spec = BaseNetworkSpec(base_model=uri, image_size=IMAGE_SIZE)
    assert spec.missing_files() == []  # nothing is looked for on this machine

    fetched = spec.localized(str(tmp_path / "fetched"))
    assert fetched.base_model == str(tmp_path / "fetched" / "tiny.keras") and os.path.isfile(fetched.base_model)
    assert build_feature_extractor(fetched).output_shape[0] is None

    before = path_digest(uri)
    gcs.upload_bytes(b"other weights", uri, overwrite=True)
    assert path_digest(uri) != before  # a changed file in the bucket is a changed key
    assert path_digest("gs://models/bases") != path_digest("gs://models/elsewhere")  # prefixes still digest trees
