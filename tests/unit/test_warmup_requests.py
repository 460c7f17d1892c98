"""Warmup records: each pushed version carries TF Serving's warmup file, and `serve` replays it."""

import logging
import os
import shutil

import numpy as np
import tensorflow as tf
from fastapi.testclient import TestClient
from tensorflow_serving.apis import prediction_log_pb2

from components.common.contract.warmup_requests import WARMUP_BATCH_SIZES, WARMUP_FILE, read_warmup_requests
from pipeline.serving.serve import ModelRepository, create_app
from tests.unit.test_serve import b64, png, pushed_root  # noqa: F401 (a fixture)


def test_a_pushed_version_carries_predict_logs_that_its_model_answers(pushed_root):  # noqa: F811
    version_dir = str(pushed_root / "colors" / "1")
    path = os.path.join(version_dir, WARMUP_FILE)

    records = [prediction_log_pb2.PredictionLog.FromString(record)
               for record in tf.data.TFRecordDataset(path).as_numpy_iterator()]
    assert [log.predict_log.request.model_spec.name for log in records] == ["colors"] * len(WARMUP_BATCH_SIZES)
    assert {log.predict_log.request.model_spec.signature_name for log in records} == {"serving_default"}
    requests = read_warmup_requests(version_dir)
    assert [len(images) for images in requests] == list(WARMUP_BATCH_SIZES)
    signature = tf.saved_model.load(version_dir).signatures["serving_default"]
    answers = signature(image_bytes=tf.constant(requests[-1]))["probabilities"].numpy()
    np.testing.assert_allclose(answers.sum(axis=1), 1.0, atol=1e-5)


def test_serve_replays_a_versions_warmup_requests_when_it_loads_it(pushed_root, caplog):  # noqa: F811
    with caplog.at_level(logging.INFO, logger="pipeline.serving.serve"), \
            TestClient(create_app(ModelRepository(str(pushed_root), "colors"))) as client:
        # Loaded and warmed at startup, before the first request.
        assert f"replayed {len(WARMUP_BATCH_SIZES)} warmup requests" in caplog.text
        assert client.post("/v1/models/colors:predict", json={"instances": [b64(png(8))]}).status_code == 200


def test_a_version_whose_warmup_file_is_broken_is_served_with_a_warning(pushed_root, tmp_path, caplog):  # noqa: F811
    shutil.copytree(pushed_root, tmp_path / "serving")
    with open(os.path.join(tmp_path / "serving" / "colors" / "1", WARMUP_FILE), "wb") as broken:
        broken.write(b"not a TFRecord")
    with caplog.at_level(logging.WARNING, logger="pipeline.serving.serve"):
        client = TestClient(create_app(ModelRepository(str(tmp_path / "serving"), "colors")))
        response = client.post("/v1/models/colors:predict", json={"instances": [b64(png(8))]})
    assert response.status_code == 200, response.text
    assert "warmup requests not replayed" in caplog.text
