"""Warmup records: requests a server replays when it loads a version, before it answers clients.

Each pushed version carries `assets.extra/tf_serving_warmup_requests`, a TFRecord of
`PredictionLog`s (the tensorflow-serving-api protos), each a `serving_default` predict request of
real test images. TF Serving, and KServe's TensorFlow predictor that runs it, replay the file when
they load the version; `headstart serve` does the same. Without it the first requests pay for the
graph's first runs: see docs/serving.md for what that costs.

The requests come in WARMUP_BATCH_SIZES images, so the sizes a batching server sends most (one
image, and a full batch) have each run once.
"""

import os

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, 32)
SIGNATURE = "serving_default"
IMAGE_INPUT = "image_bytes"


def write_warmup_requests(version_dir: str, model_name: str, examples_dir: str) -> str:
    """Writes the warmup file into a (staged) version from its test images; returns its path.

    The images are the stored test pixels as PNG, as the infra-check sends them; fewer test images
    than a batch size repeat.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    from components.common.contract import examples_info
    from components.common.contract.example_batches import image_batches

    image_size = examples_info.read_stats(examples_dir).image_size
    images, _ = next(iter(image_batches(examples_dir, "test", image_size, max(WARMUP_BATCH_SIZES))))
    encoded = [tf.io.encode_png(tf.cast(image, tf.uint8)).numpy() for image in images]
    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for size in WARMUP_BATCH_SIZES:
            batch = [encoded[index % len(encoded)] for index in range(size)]
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE))
            request.inputs[IMAGE_INPUT].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir: str) -> list[list[bytes]]:
    """The encoded images of each warmup request of a version, in order; none when it has no file.

    Raises:
        ValueError: a record is not a predict request of `serving_default` with an image input.
    """
    path = os.path.join(version_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        if not log.HasField("predict_log") or IMAGE_INPUT not in request.inputs:
            raise ValueError(f"{path}: record {index} is not a predict request with an {IMAGE_INPUT!r} input")
        if request.model_spec.signature_name not in ("", SIGNATURE):
            raise ValueError(f"{path}: record {index} calls signature {request.model_spec.signature_name!r}, "
                             f"not {SIGNATURE!r}")
        requests.append(list(tf.make_ndarray(request.inputs[IMAGE_INPUT]).reshape(-1)))
    return requests
