"""`headstart serve`: TF Serving's REST API over the serving root, new versions without restart."""

import base64
import concurrent.futures
import contextlib
import io
import shutil
import socket
import threading
import time
from unittest import mock

import httpx
import numpy as np
import pytest
import tensorflow as tf
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from components.push import core as push_core
from pipeline.serving import serve
from pipeline.serving.predict import resolve_model_dir
from pipeline.serving.serve import ModelRepository, create_app
from tests.conftest import CLASS_COLORS, decompression_bomb, gif_bomb


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


def test_a_version_number_pushed_again_after_a_rollback_serves_the_new_model(trained, served):
    """After version 1 is deleted, the next push reuses its number: the server must load the new model."""
    from components.common.config.head_config import HeadConfig
    from components.evaluate import core as evaluate_core
    from components.evaluate.blessing import BlessingPolicy
    from components.train_head import core as train_core

    client, tmp_path = served
    jpeg = (trained["tree"] / "red" / "2.jpg").read_bytes()
    push(trained, tmp_path / "serving", tmp_path / "p1")
    first = client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()

    other = dict(trained, head_model_path=train_core.run(
        features_dir=trained["features_dir"], head_model_dir=str(tmp_path / "head2"),
        config=HeadConfig(epochs=1, seed=7, hidden_units=(4,))).head_model_path,
        evaluation_dir=str(tmp_path / "evaluation2"))
    evaluate_core.run(examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
                      head_model_path=other["head_model_path"], output_dir=other["evaluation_dir"],
                      policy=BlessingPolicy(accuracy_threshold=0.0))
    shutil.rmtree(tmp_path / "serving" / "colors" / "1")  # a rollback
    assert push(other, tmp_path / "serving", tmp_path / "p2").version == 1
    second = client.post("/v1/models/colors:predict", json={"instances": [b64(jpeg)]}).json()

    expected = tf.saved_model.load(str(tmp_path / "serving" / "colors" / "1")).signatures["serving_default"](
        image_bytes=tf.constant([jpeg]))["probabilities"].numpy()
    assert second["model_version"] == "1"
    np.testing.assert_allclose(second["predictions"][0]["probabilities"], expected[0], atol=1e-6)
    assert not np.allclose(first["predictions"][0]["probabilities"], expected[0], atol=1e-3)


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
        ({"instances": [{"b64": base64.b64encode(gif_bomb()).decode()}]}, 400, "GIF frame(s) of up to 12000x12000"),
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


# What a request may cost the server: each test sends the offending request, then checks that a
# status request is still answered within a second.

MODEL_STATUS = "/v1/models/colors"


@pytest.fixture(scope="module")
def pushed_root(trained, tmp_path_factory):
    """A serving root holding version 1 of "colors"; tests that change it copy it first."""
    tmp_path = tmp_path_factory.mktemp("pushed")
    push(trained, tmp_path / "serving", tmp_path / "p1")
    return tmp_path / "serving"


def png(side: int) -> bytes:
    """A 1-bit PNG of side x side pixels: a few hundred bytes that decode to side * side * 3 bytes of RGB."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def running(app):
    """The app under a real uvicorn server on a free port, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def assert_status_answers_within_a_second(base_url: str) -> None:
    started = time.monotonic()
    response = httpx.get(base_url + MODEL_STATUS, timeout=1.0)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < 1.0, (response.status_code, elapsed)


def heavy_request(count: int = 600, side: int = 2000) -> dict:
    """2.4 gigapixels to decode in one request (about 3 s of inference here), in about 0.5 MB of JSON."""
    return {"instances": [b64(png(side))] * count}


def test_too_many_instances_get_a_413_naming_the_limit(pushed_root):
    app = create_app(ModelRepository(str(pushed_root), "colors"))
    jpeg = b64(png(8))
    with running(app) as base_url:
        response = httpx.post(base_url + "/v1/models/colors:predict", json={"instances": [jpeg] * 65}, timeout=30)
        assert response.status_code == 413, response.text
        assert "65 instances" in response.json()["error"] and "limit is 64" in response.json()["error"]
        assert_status_answers_within_a_second(base_url)
        within = httpx.post(base_url + "/v1/models/colors:predict", json={"instances": [jpeg] * 64}, timeout=30)
        assert within.status_code == 200, within.text


def test_too_many_pixels_per_request_get_a_413_before_decoding(pushed_root):
    # Each image passes the per-image pixel limit; together they do not.
    app = create_app(ModelRepository(str(pushed_root), "colors"), max_request_pixels=1_000_000)
    with running(app) as base_url:
        body = {"instances": [b64(png(800)), b64(png(800))]}
        response = httpx.post(base_url + "/v1/models/colors:predict", json=body, timeout=30)
        assert response.status_code == 413, response.text
        assert "1280000 pixels" in response.json()["error"] and "limit is 1000000" in response.json()["error"]
        assert_status_answers_within_a_second(base_url)


def test_the_default_pixel_limit_per_request_is_100_megapixels(pushed_root):
    client = TestClient(create_app(ModelRepository(str(pushed_root), "colors")))
    # 3 x 36 megapixels: refused from the headers, so nothing this large is ever decoded.
    response = client.post("/v1/models/colors:predict", json={"instances": [b64(png(6000))] * 3})
    assert response.status_code == 413, response.text
    assert "limit is 100000000" in response.json()["error"]


def test_status_is_answered_while_a_heavy_prediction_runs(pushed_root):
    app = create_app(ModelRepository(str(pushed_root), "colors"), max_instances=1000, max_request_pixels=10**10)
    with running(app) as base_url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(httpx.post, base_url + "/v1/models/colors:predict", json=heavy_request(), timeout=120)
        time.sleep(0.3)  # the heavy request is admitted and running
        assert_status_answers_within_a_second(base_url)
        assert not heavy.done(), "the heavy request ended before the status request: it proves nothing"
        assert heavy.result().status_code == 200


def test_a_prediction_beyond_the_queue_gets_a_503(pushed_root):
    # One batch's worth of queue: the heavy request's 600 images fill it.
    app = create_app(ModelRepository(str(pushed_root), "colors"), max_instances=1000, max_request_pixels=10**10,
                     max_enqueued_batches=1)
    small = {"instances": [b64(png(8))]}
    with running(app) as base_url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(httpx.post, base_url + "/v1/models/colors:predict", json=heavy_request(), timeout=120)
        time.sleep(0.3)  # the heavy request is admitted and running
        refused = httpx.post(base_url + "/v1/models/colors:predict", json=small, timeout=1.0)
        assert refused.status_code == 503, refused.text
        assert "max_enqueued_batches 1 x max_batch_size 32" in refused.json()["error"], refused.text
        assert refused.headers["retry-after"]
        assert_status_answers_within_a_second(base_url)
        assert not heavy.done(), "the heavy request ended too soon: the 503 proves nothing"
        assert heavy.result().status_code == 200
        assert httpx.post(base_url + "/v1/models/colors:predict", json=small, timeout=30).status_code == 200


def test_concurrent_clients_are_batched_and_each_gets_its_own_answers(trained, pushed_root):
    jpegs = [path.read_bytes() for label in CLASS_COLORS
             for path in sorted((trained["tree"] / label).glob("*.jpg"))[:8]]
    signature = tf.saved_model.load(str(pushed_root / "colors" / "1")).signatures["serving_default"]
    expected = signature(image_bytes=tf.constant(jpegs))["probabilities"].numpy()
    calls = []

    def recording_predict(model, images):
        calls.append(len(images))
        return serve.predict(model, images)

    with mock.patch.object(serve, "predict", recording_predict):
        # A timeout long enough that clients starting together meet in one batch on a busy machine.
        app = create_app(ModelRepository(str(pushed_root), "colors"), batch_timeout_micros=50_000)
    with running(app) as base_url, concurrent.futures.ThreadPoolExecutor(len(jpegs)) as pool:
        def one_client(jpeg):
            return httpx.post(base_url + "/v1/models/colors:predict", json={"instances": [b64(jpeg)]}, timeout=60)

        responses = list(pool.map(one_client, jpegs))

    assert [response.status_code for response in responses] == [200] * len(jpegs)
    np.testing.assert_allclose([r.json()["predictions"][0]["probabilities"] for r in responses], expected, atol=1e-5)
    assert sum(calls) == len(jpegs) and len(calls) < len(jpegs), calls


def test_only_the_newest_loaded_versions_are_kept(pushed_root, tmp_path):
    serving_root = tmp_path / "serving"
    shutil.copytree(pushed_root, serving_root)
    for version in (2, 3):
        shutil.copytree(serving_root / "colors" / "1", serving_root / "colors" / str(version))
    repository = ModelRepository(str(serving_root), "colors", max_loaded_versions=2)
    client = TestClient(create_app(repository))
    body = {"instances": [b64(png(8))]}
    for version in (1, 2, 3, 1):
        response = client.post(f"/v1/models/colors/versions/{version}:predict", json=body)
        assert response.json()["model_version"] == str(version)
    assert repository.loaded_versions() == [3, 1]


def test_a_404_does_not_reveal_where_models_live(tmp_path):
    client = TestClient(create_app(ModelRepository(str(tmp_path / "serving"), "colors")))
    for path in ("/v1/models/colors:predict", "/v1/models/colors/versions/7:predict"):
        response = client.post(path, json={"instances": [b64(png(8))]})
        assert response.status_code == 404
        assert str(tmp_path) not in response.text, response.text


def test_a_decoder_failure_of_any_kind_is_a_400(pushed_root, monkeypatch):
    repository = ModelRepository(str(pushed_root), "colors")

    def failing_decoder(image_bytes):
        raise tf.errors.UnknownError(None, None, "DecodeImage: the decoder gave up\nop details")

    monkeypatch.setattr(repository, "signature", lambda version=None: (1, failing_decoder))
    client = TestClient(create_app(repository))
    response = client.post("/v1/models/colors:predict", json={"instances": [b64(png(8))]})
    assert response.status_code == 400, response.text
    assert "not a decodable image" in response.json()["error"] and "op details" not in response.text
    assert "Graph execution" not in response.text
    assert_status_answers_within_a_second_in(client)


def test_deeply_nested_json_is_a_400(pushed_root):
    client = TestClient(create_app(ModelRepository(str(pushed_root), "colors")))
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/v1/models/colors:predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["error"]
    assert_status_answers_within_a_second_in(client)


def test_a_30_mb_chunked_body_is_a_413(pushed_root):
    client = TestClient(create_app(ModelRepository(str(pushed_root), "colors")))

    def chunks():  # a generator: sent chunked, without a Content-Length
        for _ in range(30):
            yield b" " * (1024 * 1024)

    response = client.post("/v1/models/colors:predict", content=chunks())
    assert response.status_code == 413
    assert "larger than 20971520 bytes" in response.json()["error"]
    assert_status_answers_within_a_second_in(client)


def test_an_oversized_chunked_body_is_refused_before_it_ends(pushed_root):
    # The server must stop reading at the limit: a chunked body has no length to check up front
    # and may never end.
    app = create_app(ModelRepository(str(pushed_root), "colors"), max_request_bytes=200_000)
    with running(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"POST /v1/models/colors:predict HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b" " * 65536
            for _ in range(4):  # 256 KB, and no last chunk
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.settimeout(2)
            assert connection.recv(4096).startswith(b"HTTP/1.1 413")
        assert_status_answers_within_a_second(base_url)


def test_a_request_past_capacity_is_refused_before_its_body_is_read(pushed_root):
    """N slow uploads must not each hold a body: admission comes first, so the next one gets a 503 at once."""
    # Room for one image: the slow upload's reservation fills it.
    app = create_app(ModelRepository(str(pushed_root), "colors"), max_batch_size=1, max_enqueued_batches=1)
    head = (b"POST /v1/models/colors:predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    with running(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow, \
                socket.create_connection(("127.0.0.1", port), timeout=5) as next_one:
            slow.sendall(head + b'{"instances": [')  # admitted, then stalls mid-body
            time.sleep(0.5)
            next_one.sendall(head)  # no body at all yet
            next_one.settimeout(3)
            answer = next_one.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower(), answer
        assert_status_answers_within_a_second(base_url)


def assert_status_answers_within_a_second_in(client: TestClient) -> None:
    started = time.monotonic()
    assert client.get(MODEL_STATUS).status_code == 200
    assert time.monotonic() - started < 1.0


def test_metadata_gives_the_signatures_inputs_and_outputs_as_tf_serving_does(pushed_root):
    client = TestClient(create_app(ModelRepository(str(pushed_root), "colors")))
    answer = client.get("/v1/models/colors/metadata").json()
    assert answer["model_spec"] == {"name": "colors", "signature_name": "", "version": "1"}
    serving_default = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving_default["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert serving_default["inputs"]["image_bytes"]["tensor_shape"]["dim"] == [{"size": "-1"}]
    assert {"probabilities", "class_id", "class_name"} <= set(serving_default["outputs"])
    assert serving_default["method_name"] == "tensorflow/serving/predict"
    assert client.get("/v1/models/colors/versions/1/metadata").json() == answer
    assert client.get("/v1/models/colors/versions/9/metadata").status_code == 404


def test_a_raw_image_body_gets_a_plain_400(trained, pushed_root):
    client = TestClient(create_app(ModelRepository(str(pushed_root), "colors")))
    jpeg = (trained["tree"] / "red" / "1.jpg").read_bytes()
    response = client.post("/v1/models/colors:predict", content=jpeg, headers={"content-type": "image/jpeg"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not JSON") and "codec" not in response.text
