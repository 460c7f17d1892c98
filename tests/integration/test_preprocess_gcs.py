"""The Beam preprocess step reading and writing gs:// paths with Beam's own IO (as on Dataflow),
run here with the DirectRunner against gcp-storage-emulator, which answers Beam's batch requests;
and its Dataflow job, translated by the real DataflowRunner in dry-run mode.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from apache_beam.portability.api import beam_runner_api_pb2

from components.common.storage import gcs
from components.container_image import DATAFLOW_IMAGE
from components.ingest import core as ingest_core
from components.preprocess import core as preprocess_core
from components.preprocess import runner_flags

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


# Where this machine keeps files: none of these may reach a job that runs on Dataflow's workers.
LOCAL_PATH = re.compile(rb"(?<![\w:/])/(?:tmp|work|home|root|opt|usr|var)/")
STAGED_FILE = "beam:artifact:role:staging_to:v1"


def test_preprocess_translates_for_dataflow_with_the_project_image_and_gs_paths_only(
        beam_emulator, image_tree, tmp_path):
    ingest_core.run(source=str(image_tree), output_dir=str(tmp_path / "raw"))
    for name in os.listdir(tmp_path / "raw"):
        gcs.upload_file(str(tmp_path / "raw" / name), f"gs://pipeline/run-1/raw/{name}")
    raw, examples = "gs://pipeline/run-1/raw", "gs://pipeline/run-1/examples"
    user_flags = ["--runner=DataflowRunner", "--project=demo-project", "--region=europe-west4",
                  "--machine_type=n1-standard-4", "--max_num_workers=8", "--autoscaling_algorithm=THROUGHPUT_BASED",
                  "--dry_run=True"]

    flags = runner_flags.for_run(user_flags, input_uri=raw, output_uri=examples)
    result = preprocess_core.launch(raw_dir=raw, output_dir=examples, image_size=16, train_fraction=0.6,
                                    eval_fraction=0.2, beam_args=flags)

    job = result.job  # the real DataflowRunner's job, translated and not submitted
    pipeline = job.proto_pipeline
    leaves = {t.unique_name: t for t in pipeline.components.transforms.values() if not t.subtransforms}
    for name in ("ReadRawExamples/Read/SDFBoundedSourceReader/ParDo(SDFBoundedSourceDoFn)",
                 "PreprocessImages/Batch/ParDo(_GlobalWindowsBatchingDoFn)",
                 "PreprocessImages/DecodeAndResize/ParDo(DecodeAndResize)",
                 "PreprocessImages/PartitionBySplit/ParDo(ApplyPartitionFnFn)/ParDo(ApplyPartitionFnFn)",
                 "CountPerSplitAndLabel/CombinePerKey(CountCombineFn)/Combine/ParDo(CombineValuesDoFn)",
                 *(f"Write{kind}/Write/WriteImpl/FinalizeWrite"
                   for kind in ("Train", "Eval", "Test", "Rejects", "Hashes", "Counts", "ShardList"))):
        assert name in leaves, f"{name} missing from the Dataflow job: {sorted(leaves)}"
    # One environment, the project's Dataflow image, runs every user transform.
    environments = dict(pipeline.components.environments)
    assert len(environments) == 1
    (environment_id, environment), = environments.items()
    assert environment.urn == "beam:env:docker:v1"
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == DATAFLOW_IMAGE
    assert leaves["PreprocessImages/DecodeAndResize/ParDo(DecodeAndResize)"].environment_id == environment_id
    # The only local files are what submission uploads to the gs:// staging location.
    assert {dependency.role_urn for dependency in environment.dependencies} <= {STAGED_FILE}
    without_staged_files = type(pipeline)()
    without_staged_files.CopyFrom(pipeline)
    for env in without_staged_files.components.environments.values():
        del env.dependencies[:]
    serialized = without_staged_files.SerializeToString()
    assert not LOCAL_PATH.findall(serialized), LOCAL_PATH.findall(serialized)[:5]
    assert raw.encode() in serialized and examples.encode() in serialized, "the job does not name the gs:// artifacts"
    options = job.options.get_all_options()
    assert options["sdk_container_image"] == DATAFLOW_IMAGE
    assert options["temp_location"].startswith(examples + runner_flags.TEMP_SUFFIX + "/")
    assert options["staging_location"].startswith("gs://")
    assert (options["machine_type"], options["max_num_workers"], options["autoscaling_algorithm"]) == \
        ("n1-standard-4", 8, "THROUGHPUT_BASED")
