"""The step cache and the feature store with a gs:// root, through the real google-cloud-storage
client against a real emulator (fake-gcs-server, which enforces `if_generation_match`): entries
committed by entry.json alone, races that leave one entry, and failures that name the URI.
"""

import json
import os
import re
import socket
from dataclasses import dataclass, field

import numpy as np
import pytest

from components.common.model.feature_store import FeatureStore
from components.common.storage import atomic_files, gcs, step_cache
from pipeline.devtools.storage_emulator import cloud_storage_emulator
from tests.conftest import run_at_once

BUCKET = "cache"


@dataclass
class FakeArtifact:
    """The two fields of a KFP artifact the cache uses (a real one needs a running executor)."""

    path: str
    metadata: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def emulator():
    with cloud_storage_emulator(BUCKET) as url:
        yield url


@pytest.fixture
def cache_root(emulator, request):
    return f"gs://{BUCKET}/{request.node.name}"


def write_outputs(outputs: dict[str, FakeArtifact], content: bytes) -> None:
    """A directory output with a nested binary file, and a single-file output."""
    atomic_files.write_text(os.path.join(outputs["out"].path, "data.txt"), "features")
    os.makedirs(os.path.join(outputs["out"].path, "nested"))
    with open(os.path.join(outputs["out"].path, "nested", "blob.bin"), "wb") as f:
        f.write(content)
    atomic_files.write_text(outputs["report"].path, "<html>report</html>")
    outputs["out"].metadata["count"] = 3
    outputs["report"].metadata["title"] = "a report"


def producing_step(cache_root, tmp_path, run, *, content=b"\x00\x01binary\xff"):
    """Runs a two-output step unless the cache has it; returns (outputs, cache, ran)."""
    outputs = {"out": FakeArtifact(str(tmp_path / f"run{run}" / "out")),
               "report": FakeArtifact(str(tmp_path / f"run{run}" / "report.html"))}
    cache = step_cache.open_step(cache_root, "make", params={"value": "one"}, inputs={}, outputs=outputs)
    if cache.restore():
        return outputs, cache, False
    write_outputs(outputs, content)
    cache.save()
    return outputs, cache, True


def decision(outputs):
    return atomic_files.read_json(os.path.join(outputs["out"].path, step_cache.DECISION_FILE))


def relative_files(root):
    return sorted(os.path.relpath(os.path.join(directory, name), root)
                  for directory, _, names in os.walk(root) for name in names)


def test_an_entry_saved_to_gcs_is_restored_byte_for_byte_with_its_metadata(cache_root, tmp_path):
    first, cache, ran = producing_step(cache_root, tmp_path, 1)
    assert ran
    entry_uri = f"{cache_root}/make/{cache.key}"
    entry = json.loads(gcs.read_bytes(f"{entry_uri}/entry.json"))
    assert entry["outputs"] == {"out": "directory", "report": "file"}
    assert sorted(gcs.child_names(entry_uri)) == sorted(["entry.json", entry["files"]])
    assert gcs.exists(f"{cache_root}/make/latest.json")

    second, _, ran = producing_step(cache_root, tmp_path, 2, content=b"never written")
    assert not ran
    assert decision(second)["reused"] and "inputs, parameters and code unchanged" in decision(second)["why"]
    assert relative_files(second["out"].path) == relative_files(first["out"].path)
    for name in relative_files(first["out"].path):
        if name != step_cache.DECISION_FILE:
            with open(os.path.join(first["out"].path, name), "rb") as a, \
                    open(os.path.join(second["out"].path, name), "rb") as b:
                assert a.read() == b.read(), name
    with open(second["report"].path, "rb") as f:
        assert f.read() == b"<html>report</html>"
    assert second["out"].metadata == {"count": 3} and second["report"].metadata == {"title": "a report"}
    assert step_cache.artifact_key(second["out"].path) == cache.key


def test_files_without_their_entry_json_are_never_reused(cache_root, tmp_path):
    _, cache, _ = producing_step(cache_root, tmp_path, 1)
    gcs.delete(f"{cache_root}/make/{cache.key}/entry.json")  # as a run killed before its commit leaves it
    assert list(gcs.list_objects(f"{cache_root}/make/{cache.key}"))
    outputs, _, ran = producing_step(cache_root, tmp_path, 2)
    assert ran and decision(outputs)["why"] == "no matching entry"
    _, _, ran = producing_step(cache_root, tmp_path, 3)  # the second run committed the entry
    assert not ran


def test_steps_saving_the_same_key_at_once_all_succeed_and_leave_one_entry(cache_root, tmp_path):
    keys, errors = run_at_once(
        lambda index: producing_step(cache_root, tmp_path, index, content=f"run {index}".encode())[1].key, 6)
    assert not errors and len(set(keys)) == 1
    entry_uri = f"{cache_root}/make/{keys[0]}"
    entry = json.loads(gcs.read_bytes(f"{entry_uri}/entry.json"))
    # The runs that lost the race took their uploads away; the winner's files were never overwritten.
    assert sorted(gcs.child_names(entry_uri)) == sorted(["entry.json", entry["files"]])
    restored, _, ran = producing_step(cache_root, tmp_path, 99)
    assert not ran
    with open(os.path.join(restored["out"].path, "nested", "blob.bin"), "rb") as f:
        assert f.read().startswith(b"run ")


def test_a_bucket_that_does_not_exist_fails_the_save_naming_the_uri(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv(gcs.RETRY_SECONDS_ENV, "2")
    with pytest.raises(gcs.RemoteStorageError, match=r"gs://no-such-bucket/cache/make/[0-9a-f]{64}/"):
        producing_step("gs://no-such-bucket/cache", tmp_path, 1)


def unreachable_address() -> str:
    with socket.socket() as probe:  # a port nothing listens on: the service is gone
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_unreachable_service_fails_the_restore_naming_the_uri(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", unreachable_address())
    monkeypatch.setenv(gcs.RETRY_SECONDS_ENV, "2")
    with pytest.raises(gcs.RemoteStorageError,
                       match=r"gs://cache/gone/make/[0-9a-f]{64}/entry.json: checking failed after retrying"):
        producing_step("gs://cache/gone", tmp_path, 1)
    # Each retry is shown as it happens, with how long the client waits before the next try.
    retries = [record for record in caplog.records if record.name == gcs.__name__ and "sleeping" in record.message]
    assert retries and all(record.levelname == "WARNING" for record in retries)
    assert re.search(r"sleeping \d+\.\ds", retries[0].message)


def test_a_commit_that_fails_for_another_reason_than_a_lost_race_surfaces(cache_root, tmp_path, monkeypatch):
    monkeypatch.setenv(gcs.RETRY_SECONDS_ENV, "1")
    upload_bytes = gcs.upload_bytes

    def service_gone_before_the_commit(data, uri, **options):
        if uri.endswith("/entry.json"):
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", unreachable_address())
        return upload_bytes(data, uri, **options)

    monkeypatch.setattr(gcs, "upload_bytes", service_gone_before_the_commit)
    with pytest.raises(gcs.RemoteStorageError,
                       match=rf"{cache_root}/make/[0-9a-f]{{64}}/entry.json: uploading failed after retrying"):
        producing_step(cache_root, tmp_path, 1)


def test_the_feature_store_on_gcs_is_seen_by_a_second_store_on_the_same_uri(emulator):
    uri = f"gs://{BUCKET}/features/key"
    store = FeatureStore(uri)
    store.add(["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.float32))
    store.add(["c"], np.array([[5, 6]], dtype=np.float32))
    np.testing.assert_array_equal(store.get("a"), [1, 2])
    names = [name for name, _ in gcs.list_objects(uri)]
    assert len(names) == 4 and {name.split(".", 1)[1] for name in names} == {"vectors.npy", "digests.npy"}
    # A chunk whose vectors were uploaded but not its digests: a run killed between the two.
    gcs.upload_bytes(b"not even an array", f"{uri}/orphan.vectors.npy")

    reopened = FeatureStore(uri)
    assert len(reopened) == 3 and "c" in reopened and "d" not in reopened
    np.testing.assert_array_equal(reopened.get("b"), [3, 4])
    np.testing.assert_array_equal(reopened.get("c"), [5, 6])
    assert not os.path.exists(os.path.join(reopened.directory, "orphan.vectors.npy"))
    assert len(FeatureStore(uri, ignore_existing=True)) == 0


def test_a_retried_commit_that_finds_its_own_first_attempt_keeps_its_files(cache_root, tmp_path, monkeypatch):
    upload_bytes = gcs.upload_bytes

    def committed_then_answered_412(data, uri, **options):
        upload_bytes(data, uri, **options)
        if uri.endswith("/entry.json"):  # the first attempt committed; its retry finds the object there
            raise gcs.AlreadyExists(f"{uri}: already exists")

    monkeypatch.setattr(gcs, "upload_bytes", committed_then_answered_412)
    _, cache, ran = producing_step(cache_root, tmp_path, 1)
    assert ran
    monkeypatch.setattr(gcs, "upload_bytes", upload_bytes)
    entry_uri = f"{cache_root}/make/{cache.key}"
    entry = json.loads(gcs.read_bytes(f"{entry_uri}/entry.json"))
    assert list(gcs.list_objects(f"{entry_uri}/{entry['files']}")), "the entry names deleted files"
    restored, _, ran = producing_step(cache_root, tmp_path, 2)
    assert not ran
    assert atomic_files.read_lines(os.path.join(restored["out"].path, "data.txt")) == ["features"]
