"""A gs:// push against a real emulator (fake-gcs-server) as TF Serving and KServe see it.

They list the model directory's integer children and load the highest, so a version must never
look loadable before it is whole; a push killed mid-upload must be ignored, then cleaned up; a
push still uploading must never be cleaned up by another.
"""

import os
import subprocess
import sys
import threading
import time

import pytest

from components.common.contract.serving_layout import SAVED_MODEL_FILE, existing_versions, latest_version_dir
from components.common.storage import gcs
from components.push import gcs_commit
from components.push.gcs_commit import claim_uri, commit_to_gcs, remove_abandoned_versions, upload_order
from pipeline.devtools.storage_emulator import cloud_storage_emulator
from tests.conftest import REPO_ROOT

BUCKET = "servingroot"
GRACE = 1.0

# Pushes in a child process, sleeping before each upload so a kill or a second push lands while
# it uploads, however loaded the machine is.
PUSH_SCRIPT = """
import sys, time
from components.common.storage import gcs
from components.push.gcs_commit import commit_to_gcs

upload, upload_many, delay = gcs.upload_file, gcs.upload_many, float(sys.argv[3])

def slow_upload(*args, **kwargs):
    time.sleep(delay)
    upload(*args, **kwargs)

def slow_upload_many(files, **kwargs):  # one at a time, each late: a push that takes a while
    for one in files:
        time.sleep(delay)
        upload_many([one], **kwargs)

gcs.upload_file, gcs.upload_many = slow_upload, slow_upload_many
print(commit_to_gcs(sys.argv[1], sys.argv[2]), flush=True)
"""


@pytest.fixture(scope="module")
def emulator():
    with cloud_storage_emulator(BUCKET) as url:
        yield url


def fake_export(root, marker: str, assets: int = 0) -> str:
    """A SavedModel-shaped folder: variables, `assets` asset files, the side files, saved_model.pb."""
    export = root / f"export-{marker}"
    (export / "variables").mkdir(parents=True)
    (export / "variables" / "variables.index").write_text(marker)
    (export / "variables" / "variables.data-00000-of-00001").write_bytes(marker.encode() * 2000)
    (export / "assets").mkdir()
    for index in range(assets):
        (export / "assets" / f"vocabulary-{index:03d}.txt").write_text(f"{marker} {index}")
    (export / "fingerprint.pb").write_text(marker)
    (export / "model_card.md").write_text(f"# {marker}")
    (export / ".headstart-model-key").write_text(marker)
    (export / SAVED_MODEL_FILE).write_text(marker)
    return str(export)


def start_push(export: str, model_dir: str, delay: float) -> subprocess.Popen:
    # STORAGE_EMULATOR_HOST, set by the emulator fixture, reaches the child through the environment.
    return subprocess.Popen([sys.executable, "-c", PUSH_SCRIPT, export, model_dir, str(delay)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, text=True)


def version_files(model_dir: str, version: int) -> set[str]:
    return {name for name, _ in gcs.list_objects(gcs.join(model_dir, str(version)))}


def wait_for_files(model_dir: str, version: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not version_files(model_dir, version):
        assert process.poll() is None, "the push ended before uploading anything"
        assert time.monotonic() < deadline, f"no object under {model_dir}/{version} within {timeout} s"
        time.sleep(0.005)


class ServerLikePoller:
    """Lists the model directory over and over as TF Serving does and judges the highest version."""

    def __init__(self, model_dir: str, export_files: set[str]):
        self.model_dir, self.export_files = model_dir, export_files
        self.seen: list[tuple[int, bool, bool]] = []  # (highest version, has saved_model.pb, whole)
        self.strays: set[str] = set()  # objects under an integer prefix that are not model files
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            versions: dict[int, set[str]] = {}
            for name, _ in gcs.list_objects(self.model_dir):
                head, _, rest = name.partition("/")
                if head.isdigit():
                    versions.setdefault(int(head), set()).add(rest)
                    if rest not in self.export_files:
                        self.strays.add(name)
            if versions:
                highest = max(versions)
                files = versions[highest]
                self.seen.append((highest, SAVED_MODEL_FILE in files, files == self.export_files))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_a_push_killed_mid_upload_is_never_served_and_is_cleaned_up_after_the_grace(emulator, tmp_path,
                                                                                      monkeypatch):
    model_dir = f"gs://{BUCKET}/killed"
    export = fake_export(tmp_path, "model", assets=150)
    export_files = set(upload_order(export))
    assert commit_to_gcs(export, model_dir) == 1

    with ServerLikePoller(model_dir, export_files) as poller:
        push = start_push(export, model_dir, delay=0.01)
        try:
            wait_for_files(model_dir, 2, push)
        finally:
            push.kill()  # SIGKILL: no cleanup of its own
            push.wait()
        left = version_files(model_dir, 2)
        assert 0 < len(left) < len(export_files) and SAVED_MODEL_FILE not in left

        assert existing_versions(model_dir) == [1]
        assert latest_version_dir(f"gs://{BUCKET}", "killed") == f"{model_dir}/1"
        assert gcs.exists(claim_uri(model_dir, 2))
        assert remove_abandoned_versions(model_dir) == []  # within the default hour: left alone
        assert version_files(model_dir, 2) == left

        time.sleep(GRACE + 0.5)
        monkeypatch.setenv(gcs_commit.GRACE_SECONDS_ENV, str(GRACE))
        assert commit_to_gcs(export, model_dir) == 3
        time.sleep(0.2)  # a few more listings of the finished version

    assert version_files(model_dir, 2) == set()
    assert gcs.exists(claim_uri(model_dir, 2))  # the number is never handed out again
    assert version_files(model_dir, 3) == export_files
    assert existing_versions(model_dir) == [1, 3]
    assert not poller.strays, f"non-model objects under a version prefix: {sorted(poller.strays)[:5]}"
    assert (2, False, False) in poller.seen, "the poller never saw the killed version as the highest"
    half_loadable = {(version, has_pb, whole) for version, has_pb, whole in poller.seen if has_pb and not whole}
    assert not half_loadable, f"a server could load a half version: {half_loadable}"


def test_a_live_push_is_never_cleaned_up_by_another_push(emulator, tmp_path):
    model_dir = f"gs://{BUCKET}/live"
    slow_export = fake_export(tmp_path, "slow", assets=100)
    live = start_push(slow_export, model_dir, delay=0.06)  # over 6 s of uploads
    try:
        wait_for_files(model_dir, 1, live)
        versions = []
        for _ in range(2):
            time.sleep(GRACE + 0.5)  # the live push's claim is now older than the grace period
            before = version_files(model_dir, 1)
            versions.append(commit_to_gcs(fake_export(tmp_path, f"other-{len(versions)}"), model_dir,
                                          grace_seconds=GRACE))
            assert live.poll() is None, "the live push finished too soon for this test to mean anything"
            assert version_files(model_dir, 1) >= before
        output, _ = live.communicate(timeout=120)
    finally:
        live.kill()
    assert live.returncode == 0 and output.strip() == "1"
    assert versions == [2, 3]
    assert version_files(model_dir, 1) == set(upload_order(slow_export))
    assert existing_versions(model_dir) == [1, 2, 3]


def test_saved_model_is_uploaded_last_and_the_version_holds_only_model_files(emulator, tmp_path):
    from google.cloud import storage

    model_dir = f"gs://{BUCKET}/order"
    export = fake_export(tmp_path, "order", assets=3)
    order = upload_order(export)
    assert order[-1] == SAVED_MODEL_FILE
    first = [path for path in order if path.startswith(("variables/", "assets/"))]
    assert order[:len(first)] == first and len(first) == 5

    assert commit_to_gcs(export, model_dir) == 1

    blobs = list(storage.Client().list_blobs(BUCKET, prefix="order/1/"))
    generations = {blob.name.removeprefix("order/1/"): blob.generation for blob in blobs}
    assert set(generations) == set(order)  # the claim lives elsewhere
    saved_model = generations.pop(SAVED_MODEL_FILE)
    assert all(generation < saved_model for generation in generations.values())
    side_files = [generations[path] for path in order[len(first):-1]]
    assert max(generations[path] for path in first) < min(side_files)
    assert gcs.exists(claim_uri(model_dir, 1))
