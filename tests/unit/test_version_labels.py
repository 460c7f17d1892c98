"""Version labels: `headstart label` writes TF Serving's model config, and `serve` answers by label."""

import shutil
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pipeline.cli.commands import main
from pipeline.serving.serve import ModelRepository, create_app
from pipeline.serving.version_labels import config_path, read_labels, set_label
from tests.unit.test_serve import b64, png, pushed_root, running  # noqa: F401 (a fixture)


@pytest.fixture
def two_versions(pushed_root, tmp_path):  # noqa: F811
    serving_root = tmp_path / "serving"
    shutil.copytree(pushed_root, serving_root)
    shutil.copytree(serving_root / "colors" / "1", serving_root / "colors" / "2")
    shutil.copytree(serving_root / "colors" / "1", serving_root / "colors" / "3")
    return serving_root


def test_labels_are_written_as_tf_serving_reads_them(two_versions):
    set_label(str(two_versions), "colors", "stable", 1)
    assert set_label(str(two_versions), "colors", "canary", 2) == {"canary": 2, "stable": 1}

    with open(config_path(str(two_versions), "colors"), encoding="utf-8") as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == "colors" and model.base_path == str(two_versions / "colors")
    assert model.model_platform == "tensorflow"
    assert dict(model.version_labels) == {"stable": 1, "canary": 2}
    # TF Serving labels only loaded versions: the labelled ones, and the newest.
    assert list(model.model_version_policy.specific.versions) == [1, 2, 3]
    assert read_labels(str(two_versions), "colors") == {"canary": 2, "stable": 1}


@pytest.mark.parametrize("label, version, message", [
    ("stable", 9, "has no version 9; its versions are [1, 2, 3]"),
    ("Stable!", 1, "must be lower-case letters"),
    ("canary", None, "has no label 'canary'"),
])
def test_a_bad_label_request_names_what_is_wrong(two_versions, label, version, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        set_label(str(two_versions), "colors", label, version)


def test_serve_answers_by_label_and_follows_a_relabel(two_versions):
    set_label(str(two_versions), "colors", "stable", 1)
    set_label(str(two_versions), "colors", "canary", 2)
    client = TestClient(create_app(ModelRepository(str(two_versions), "colors")))
    body = {"instances": [b64(png(8))]}

    assert client.post("/v1/models/colors/labels/stable:predict", json=body).json()["model_version"] == "1"
    assert client.post("/v1/models/colors/labels/canary:predict", json=body).json()["model_version"] == "2"
    status = client.get("/v1/models/colors").json()["model_version_status"]
    assert [(entry["version"], entry["labels"]) for entry in status] == [("1", ["stable"]), ("2", ["canary"]),
                                                                         ("3", [])]
    assert client.get("/v1/models/colors/labels/canary").json()["model_version_status"][0]["version"] == "2"

    set_label(str(two_versions), "colors", "stable", 2)  # the canary is promoted; no restart
    assert client.post("/v1/models/colors/labels/stable:predict", json=body).json()["model_version"] == "2"
    missing = client.post("/v1/models/colors/labels/beta:predict", json=body)
    assert missing.status_code == 404 and "no label 'beta'" in missing.json()["error"]


def test_moving_stable_under_a_busy_client_fails_no_request_and_switches_its_answers(two_versions):
    set_label(str(two_versions), "colors", "stable", 1)
    answered: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client(base_url):
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not stop.is_set():
                response = http.post("/v1/models/colors/labels/stable:predict", json={"instances": [b64(png(8))]})
                answered.append((response.status_code, response.json().get("model_version")))

    def wait_for(count):
        deadline = time.monotonic() + 60
        while len(answered) < count:
            assert time.monotonic() < deadline, answered
            time.sleep(0.01)

    with running(create_app(ModelRepository(str(two_versions), "colors"))) as base_url:
        sender = threading.Thread(target=client, args=(base_url,))
        sender.start()
        try:
            wait_for(5)
            set_label(str(two_versions), "colors", "stable", 2)
            wait_for(len(answered) + 10)
        finally:
            stop.set()
            sender.join()

    assert {status for status, _ in answered} == {200}, answered
    versions = [version for _, version in answered]
    switch = versions.index("2")
    assert switch >= 5 and set(versions[:switch]) == {"1"} and set(versions[switch:]) == {"2"}, versions


def test_the_label_command_sets_lists_and_removes(two_versions, capsys):
    root = ["--serving-root", str(two_versions), "--model-name", "colors"]
    assert main(["label", "canary", "3", *root]) == 0
    assert "canary -> version 3" in capsys.readouterr().out
    assert main(["label", *root]) == 0
    assert "canary -> version 3" in capsys.readouterr().out
    assert main(["label", "canary", "--remove", *root]) == 0
    assert "no labels" in capsys.readouterr().out
    assert main(["label", "canary", "7", *root]) == 2
    assert "has no version 7" in capsys.readouterr().err
