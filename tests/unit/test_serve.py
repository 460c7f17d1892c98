"""`headstart serve`: TF Serving's REST API over the serving root, new versions without restart."""

import base64
import shutil

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from components.push import core as push_core
from pipeline.predict import resolve_model_dir
from pipeline.serve import ModelRepository, create_app
from tests.conftest import CLASS_COLORS, decompression_bomb


def push(trained, serving_root, output_dir):
    return push_core.run(
        evaluation_dir=trained["evaluation_dir"], examples_dir=trained["examples_dir"],
        base_model_path=trained["base_model_path"], head_model_path=trained["head_model_path"],
        serving_root=str(serving_root), model_name="colors", output_dir=str(output_dir),
    )


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture
def served(trained, tmp_path):
    client = TestClient(create_app(ModelRepository(str(tmp_path / "serving"), "colors"), max_request_bytes=200_000))
    return client, tmp_path


def test_predictions_match_the_pushed_model(trained, served):
    client, tmp_path = served
    pushed = push(trained, tmp_path / "serving", tmp_path / "p1")
    jpegs = [(trained["tree"] / label / "5.jpg").read_bytes() for label in CLASS_COLORS]

    response = client.post("/v1/models/colors:predict", json={"instances": [b64(j) for j in jpegs]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1" and len(body["predictions"]) == 2
    direct = tf.saved_model.load(pushed.uri).signatures["serving_default"](image_bytes=tf.constant(jpegs))
    np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]],
                               direct["probabilities"].numpy(), atol=1e-6)
    assert body["predictions"][0]["class_names"] == ["blue", "red"]
    assert client.get("/v1/models/colors").json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_a_newly_pushed_version_is_served_without_restart(trained, served):
    client, tmp_path = served
    assert client.post("/v1/models/colors:predict", json={"instances": [b64(b"x")]}).status_code == 404
    assert client.get("/v1/models/colors").json() == {"model_version_status": []}

    push(trained, tmp_path / "serving", tmp_path / "p1")
    jpeg = (trained["tree"] / "red" / "2.jpg").read_bytes()
    assert client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()["model_version"] == "1"

    push(trained, tmp_path / "serving", tmp_path / "p2")
    assert client.get("/v1/models/colors").json()["model_version_status"][0]["version"] == "2"
    assert client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()["model_version"] == "2"
    pinned = client.post("/v1/models/colors/versions/1:predict", json={"instances": [b64(jpeg)]})
    assert pinned.json()["model_version"] == "1"

    shutil.rmtree(tmp_path / "serving" / "colors" / "2")  # a rollback: the server follows it
    assert client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()["model_version"] == "1"


def test_a_version_folder_without_saved_model_is_not_served(trained, served):
    client, tmp_path = served
    push(trained, tmp_path / "serving", tmp_path / "p1")
    model_dir = tmp_path / "serving" / "colors"
    shutil.copytree(model_dir / "1", model_dir / "2")  # a copy by hand that lost its saved_model.pb
    (model_dir / "2" / "saved_model.pb").unlink()
    jpeg = (trained["tree"] / "red" / "2.jpg").read_bytes()

    assert client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()["model_version"] == "1"
    assert client.get("/v1/models/colors").json()["model_version_status"][0]["version"] == "1"
    assert client.get("/v1/models/colors/versions/2").status_code == 404
    assert resolve_model_dir(str(model_dir)) == str(model_dir / "1")


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"instances": [{"b64": "%%% not base64"}]}, 400, "not valid base64"),
        ({"instances": [{"b64": base64.b64encode(b"plain text").decode()}]}, 400, "not a decodable image"),
        ({"instances": ["just a string"]}, 400, "expected"),
        ({"rows": []}, 400, "instances"),
        ({"instances": [{"b64": "A" * 400_000}]}, 413, "larger than"),
        ({"instances": [{"b64": base64.b64encode(decompression_bomb()).decode()}]}, 400, "image too large"),
    ],
)
def test_bad_requests_get_a_4xx_with_the_reason(trained, served, body, status, message):
    client, tmp_path = served
    push(trained, tmp_path / "serving", tmp_path / "p1")
    response = client.post("/v1/models/colors:predict", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_an_unknown_model_is_a_404(served):
    client, _ = served
    assert client.get("/v1/models/other").status_code == 404
    assert client.post("/v1/models/other:predict", json={"instances": []}).status_code == 404
