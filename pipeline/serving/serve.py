"""`headstart serve`: the newest pushed version over TF Serving's REST API.

The same requests a client sends to TF Serving or KServe's TensorFlow predictor work here:
    GET  /v1/models/NAME                                  version status
    GET  /v1/models/NAME/versions/N                       one version's status
    GET  /v1/models/NAME[/versions/N]/metadata            the signatures' inputs and outputs
    POST /v1/models/NAME:predict                          {"instances": [{"b64": "<JPEG, base64>"}, ...]}
    POST /v1/models/NAME/versions/N:predict               the same, against version N
    GET  /v1/models/NAME/labels/LABEL                     the status of the version a label names
    POST /v1/models/NAME/labels/LABEL:predict             a prediction of the version a label names
                                                          (labels: `headstart label`, version_labels.py)
Answers are in TF Serving's row format: {"predictions": [{"probabilities": [...], "class_id": 1,
"class_name": "dogs", "class_names": [...]}, ...]}. A newly pushed version is picked up on the
next request, without a restart. Versions are chosen by `serving_layout.existing_versions`, the
rule the push and the champion lookup follow: an integer folder counts only once it holds
`saved_model.pb`, so a folder copied by hand without it is never served.

What one request may cost is bounded, so that no request can take the server down:
    body            MAX_REQUEST_BYTES (20 MiB), read no further than that          413
    instances       MAX_INSTANCES (64) per request                                  413
    pixels          MAX_PIXELS (50 million) per image, MAX_REQUEST_PIXELS (100      400 / 413
                    million) per request, both from the image headers, before decoding
    JSON            nested deeper than Python's recursion limit                    400
    queue           the images of concurrent requests are merged into batches of at    503
                    most MAX_BATCH_SIZE, run off the event loop (`pipeline.serving.batching`);
                    once MAX_ENQUEUED_BATCHES batches' worth of images are waiting or
                    running, a request is refused with Retry-After before its body is
                    read, so status requests are answered meanwhile
    loaded models   the MAX_LOADED_VERSIONS (2) most recently used versions
All but the per-image limit (`components.common.images.pixel_limit`, shared with the pipeline) are
parameters of `serve`; the batching ones carry TF Serving's names.
"""

import base64
import binascii
import collections
import contextlib
import json
import logging
import os
import reprlib
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from components.common.contract.serving_layout import SAVED_MODEL_FILE, existing_versions, model_directory
from components.common.contract.warmup_requests import read_warmup_requests
from components.common.images.pixel_limit import header_pixels, oversize_reason
from pipeline.serving.batching import (
    BATCH_TIMEOUT_MICROS,
    MAX_BATCH_SIZE,
    MAX_ENQUEUED_BATCHES,
    NUM_BATCH_THREADS,
    BatchingQueue,
)
from pipeline.serving.predict import NOT_AN_IMAGE
from pipeline.serving.version_labels import read_labels

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 20 * 1024 * 1024
# A batch of 64 covers TF Serving clients' usual batch sizes; more belongs in several requests.
MAX_INSTANCES = 64
# Decoding takes 3 bytes of RGB and 12 of float per pixel: 100 million pixels is about 1.5 GB at
# worst, and two 50-megapixel photos still fit in one request.
MAX_REQUEST_PIXELS = 100_000_000
MAX_LOADED_VERSIONS = 2
# Written by tf.saved_model.save beside saved_model.pb.
SAVED_MODEL_FINGERPRINT = "fingerprint.pb"
RETRY_AFTER_SECONDS = 1


class BadRequest(ValueError):
    """The request cannot be answered as sent (HTTP 400)."""


class RequestTooLarge(BadRequest):
    """The request asks for more than one request may (HTTP 413)."""


class ModelRepository:
    """Loads a model's versions from the serving root on demand, keeping the most recently used.

    Args:
        serving_root: the folder holding `<model_name>/<version>/`.
        model_name: the model served.
        max_loaded_versions: how many versions stay loaded; loading another drops the least
            recently used.
    """

    def __init__(self, serving_root: str, model_name: str, max_loaded_versions: int = MAX_LOADED_VERSIONS):
        if max_loaded_versions < 1:
            raise ValueError(f"max_loaded_versions must be at least 1, got {max_loaded_versions}")
        self.model_name = model_name
        self.serving_root = serving_root
        self.model_dir = model_directory(serving_root, model_name)
        self.max_loaded_versions = max_loaded_versions
        # version -> (its content's identity, the loaded SavedModel)
        self._loaded: collections.OrderedDict[int, tuple[bytes, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def versions(self) -> list[int]:
        """The versions that can be served now, oldest first (see `serving_layout.existing_versions`)."""
        return existing_versions(self.model_dir)

    def labels(self) -> dict[str, int]:
        """The model's version labels (`version_labels.py`), read afresh: `headstart label` changes them live.

        A config that cannot be read labels nothing, with a warning: the versions are still served.
        """
        try:
            return read_labels(self.serving_root, self.model_name)
        except ValueError as error:
            logger.warning("version labels not read: %s", error)
            return {}

    def labelled_version(self, label: str, labels: dict[str, int] | None = None) -> int:
        """The version a label names, in `labels` when given (else read afresh).

        Raises:
            LookupError: no such label.
        """
        labels = self.labels() if labels is None else labels
        if label not in labels:
            raise LookupError(f"{self.model_name!r} has no label {label!r}; its labels are {sorted(labels) or 'none'}")
        return labels[label]

    def metadata(self, version: int | None = None) -> dict:
        """TF Serving's GetModelMetadata answer for a version (the newest when None): its signature defs.

        Read from the version's saved_model.pb, as TF Serving reports them (protobuf's JSON form).

        Raises:
            LookupError: no such version.
        """
        from google.protobuf.json_format import MessageToDict
        from tensorflow.core.protobuf import saved_model_pb2

        versions = self.versions()
        version = (versions or [None])[-1] if version is None else version
        if version not in versions:
            raise LookupError(f"{self.model_name!r} has no version {version}; it has {versions}")
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(self.model_dir, str(version), SAVED_MODEL_FILE), "rb") as f:
            saved_model.ParseFromString(f.read())
        signatures = MessageToDict(saved_model.meta_graphs[0], preserving_proto_field_name=True)["signature_def"]
        return {"model_spec": {"name": self.model_name, "signature_name": "", "version": str(version)},
                "metadata": {"signature_def": {"signature_def": signatures}}}

    def loaded_versions(self) -> list[int]:
        """The versions held in memory, the least recently used first."""
        with self._lock:
            return list(self._loaded)

    def _identity(self, version: int) -> bytes:
        """What tells this version's SavedModel from another pushed under the same number.

        A version deleted (a rollback) and pushed again holds another model under its old number:
        the SavedModel's fingerprint (`fingerprint.pb`, hashes of its graph and weights) tells them
        apart; without one, the size and write time of `saved_model.pb`.
        """
        version_dir = os.path.join(self.model_dir, str(version))
        try:
            with open(os.path.join(version_dir, SAVED_MODEL_FINGERPRINT), "rb") as fingerprint:
                return fingerprint.read()
        except FileNotFoundError:
            status = os.stat(os.path.join(version_dir, SAVED_MODEL_FILE))
            return f"{status.st_size}:{status.st_mtime_ns}".encode()

    def signature(self, version: int | None = None):
        """(version, serving_default) of a version, the newest when None.

        Raises:
            LookupError: no such version (or none at all yet). The message names the model, never
                where it lives on disk: it reaches clients.
        """
        versions = self.versions()
        if not versions:
            raise LookupError(f"no version of {self.model_name!r} has been pushed yet")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise LookupError(f"{self.model_name!r} has no version {version}; it has {versions}")
        try:
            identity = self._identity(version)
        except FileNotFoundError as error:  # deleted since the listing
            raise LookupError(f"{self.model_name!r} has no version {version} any more") from error
        with self._lock:
            if version in self._loaded and self._loaded[version][0] == identity:
                self._loaded.move_to_end(version)
            else:
                import tensorflow as tf

                logger.info("loading %s version %d", self.model_name, version)
                self._loaded.pop(version, None)
                version_dir = os.path.join(self.model_dir, str(version))
                saved_model = tf.saved_model.load(version_dir)
                _replay_warmup(saved_model.signatures["serving_default"], version_dir)
                self._loaded[version] = identity, saved_model
                while len(self._loaded) > self.max_loaded_versions:
                    dropped, _ = self._loaded.popitem(last=False)
                    logger.info("unloading %s version %d", self.model_name, dropped)
            loaded = self._loaded[version][1]
        return version, loaded.signatures["serving_default"]


def _replay_warmup(signature, version_dir: str) -> None:
    """Sends a version's warmup requests through it before any client's, as TF Serving does.

    A version whose warmup file cannot be replayed is served anyway: the push's infra-check has
    already seen it answer real images, and only the first requests' speed is at stake.
    """
    import tensorflow as tf

    started = time.monotonic()
    try:
        requests = read_warmup_requests(version_dir)
        for images in requests:
            signature(image_bytes=tf.constant(images))
    except (ValueError, tf.errors.OpError) as error:
        logger.warning("%s: warmup requests not replayed: %s", version_dir, error)
        return
    if requests:
        logger.info("replayed %d warmup requests (%s images) in %.2f s", len(requests),
                    "+".join(str(len(images)) for images in requests), time.monotonic() - started)


def _image_bytes(instance: Any, index: int) -> bytes:
    """The encoded image of one instance: {"b64": ...} or {"image_bytes": {"b64": ...}}."""
    if isinstance(instance, dict) and "image_bytes" in instance:
        instance = instance["image_bytes"]
    if not isinstance(instance, dict) or not isinstance(instance.get("b64"), str):
        raise BadRequest(f'instance {index}: expected {{"b64": "<base64 image>"}}, got {reprlib.repr(instance)[:80]}')
    try:
        return base64.b64decode(instance["b64"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f"instance {index}: not valid base64: {error}") from error


def parse_instances(raw: bytes, max_instances: int = MAX_INSTANCES,
                    max_request_pixels: int = MAX_REQUEST_PIXELS) -> tuple[list[bytes], list[int]]:
    """The encoded images of a request body and their pixels (from the headers), all checked.

    Every limit is checked before any image is decoded.

    Raises:
        BadRequest: not the expected JSON, not base64, or one image over the per-image pixel limit.
        RequestTooLarge: more instances, or more pixels in all, than one request may have.
    """
    try:
        body = json.loads(raw)
    except RecursionError as error:
        raise BadRequest("the JSON is nested too deeply to parse") from error
    except ValueError as error:  # not JSON, or not text at all: a raw image, say
        raise BadRequest('the body is not JSON: send {"instances": [{"b64": "<image, base64>"}, ...]}, each '
                         "image base64-encoded; a raw image body is not taken") from error
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
        raise BadRequest('expected a JSON object {"instances": [{"b64": "..."}, ...]}')
    if len(body["instances"]) > max_instances:
        raise RequestTooLarge(f"{len(body['instances'])} instances in one request; the limit is {max_instances}")
    images = [_image_bytes(instance, index) for index, instance in enumerate(body["instances"])]
    for index, image in enumerate(images):
        if reason := oversize_reason(image):
            raise BadRequest(f"instance {index}: {reason}")
    pixels = [header_pixels(image) or 0 for image in images]
    if sum(pixels) > max_request_pixels:
        raise RequestTooLarge(f"{sum(pixels)} pixels in one request (the images' width x height added up); "
                              f"the limit is {max_request_pixels}")
    return images, pixels


def predict(signature, images: list[bytes]) -> list[dict]:
    """Runs serving_default over encoded images; returns one prediction per image."""
    import tensorflow as tf

    try:
        outputs = signature(image_bytes=tf.constant(images))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        # TensorFlow's text ("Graph execution error: ...") names ops, not the client's mistake.
        raise BadRequest(f"an instance is {NOT_AN_IMAGE}") from error
    return [
        {
            "probabilities": outputs["probabilities"][row].numpy().tolist(),
            "class_id": int(outputs["class_id"][row]),
            "class_name": outputs["class_name"][row].numpy().decode(),
            "class_names": [name.decode() for name in outputs["class_names"][row].numpy()],
        }
        for row in range(len(images))
    ]


async def _read_body(request: Request, max_request_bytes: int) -> bytes:
    """The body, read no further than the limit: a chunked body states no length and may never end."""
    too_large = RequestTooLarge(f"request larger than {max_request_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_request_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_request_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _unknown_model(model: str, name: str) -> JSONResponse:
    return _error(404, f"no model named {model!r}; this server serves {name!r}")


def _version_status(versions: list[int], labels: dict[str, int]) -> dict:
    """TF Serving's status answer for these versions, each of them available, with its labels."""
    return {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""},
         "labels": sorted(name for name, labelled in labels.items() if labelled == v)}
        for v in versions
    ]}


class _PredictRequests:
    """Answers one model's predict requests within the request limits (see `create_app`)."""

    def __init__(self, repository: ModelRepository, queue: BatchingQueue, max_request_bytes: int,
                 max_instances: int, max_request_pixels: int):
        self._repository = repository
        self._queue = queue
        self._max_request_bytes = max_request_bytes
        self._max_instances = max_instances
        self._max_request_pixels = max_request_pixels

    def _prepare(self, raw: bytes, version: int | None, label: str | None):
        images, pixels = parse_instances(raw, self._max_instances, self._max_request_pixels)
        if label is not None:
            version = self._repository.labelled_version(label)
        served_version, signature = self._repository.signature(version)
        return images, pixels, served_version, signature

    async def answer(self, request: Request, model: str, version: int | None = None,
                     label: str | None = None) -> JSONResponse:
        """The predictions of `version`, or of the version `label` names, else of the newest.

        Or the error that explains why there are none.
        """
        if model != self._repository.model_name:
            return _unknown_model(model, self._repository.model_name)
        queue = self._queue
        # Admitted before its body is read: what the admitted hold, uploads still arriving
        # included, is bounded by the queue's, and a refused body is never read.
        if not queue.admit():
            return _error(503, f"server busy: the queue holds {queue.max_enqueued_images} images "
                               f"(max_enqueued_batches {queue.max_enqueued_batches} x max_batch_size "
                               f"{queue.max_batch_size}) or {queue.max_enqueued_pixels} pixels, waiting or "
                               "running; retry later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        submitted = False
        try:
            raw = await _read_body(request, self._max_request_bytes)
            # JSON parsing and header reads of up to max_request_bytes stay off the event loop too.
            images, pixels, served_version, signature = await run_in_threadpool(self._prepare, raw, version, label)
            submitted = True
            predictions = await queue.submit(signature, images, pixels)
            return JSONResponse({"predictions": predictions, "model_version": str(served_version)})
        except LookupError as error:
            return _error(404, str(error))
        except RequestTooLarge as error:
            return _error(413, str(error))
        except (BadRequest, ValueError) as error:
            return _error(400, str(error))
        finally:
            if not submitted:
                queue.release()


def _add_status_routes(app: FastAPI, repository: ModelRepository) -> None:
    name = repository.model_name

    @app.get("/v1/models/{model}")
    def model_status(model: str):
        if model != name:
            return _unknown_model(model, name)
        versions, labels = repository.versions(), repository.labels()
        # TF Serving reports the versions it serves: the newest, and here the labelled ones.
        return _version_status(sorted(set(versions[-1:]) | (set(labels.values()) & set(versions))), labels)

    @app.get("/v1/models/{model}/versions/{version}")
    def version_status(model: str, version: int):
        if model != name or version not in repository.versions():
            return _error(404, f"no version {version} of {model!r}")
        return _version_status([version], repository.labels())

    @app.get("/v1/models/{model}/labels/{label}")
    def label_status(model: str, label: str):
        if model != name:
            return _unknown_model(model, name)
        labels = repository.labels()  # read once: the version and the labels shown agree
        try:
            version = repository.labelled_version(label, labels)
        except LookupError as error:
            return _error(404, str(error))
        return _version_status([version], labels)


def _add_metadata_routes(app: FastAPI, repository: ModelRepository) -> None:
    def metadata(model: str, version: int | None):
        if model != repository.model_name:
            return _unknown_model(model, repository.model_name)
        try:
            return repository.metadata(version)
        except LookupError as error:
            return _error(404, str(error))

    @app.get("/v1/models/{model}/metadata")
    def model_metadata(model: str):
        return metadata(model, None)

    @app.get("/v1/models/{model}/versions/{version}/metadata")
    def version_metadata(model: str, version: int):
        return metadata(model, version)


def _add_predict_routes(app: FastAPI, requests: _PredictRequests) -> None:
    @app.post("/v1/models/{model}:predict")
    async def predict_newest(model: str, request: Request):
        return await requests.answer(request, model, None)

    @app.post("/v1/models/{model}/versions/{version}:predict")
    async def predict_version(model: str, version: int, request: Request):
        return await requests.answer(request, model, version=version)

    @app.post("/v1/models/{model}/labels/{label}:predict")
    async def predict_label(model: str, label: str, request: Request):
        return await requests.answer(request, model, label=label)


def create_app(repository: ModelRepository, max_request_bytes: int = MAX_REQUEST_BYTES,
               max_instances: int = MAX_INSTANCES, max_request_pixels: int = MAX_REQUEST_PIXELS,
               max_batch_size: int = MAX_BATCH_SIZE, batch_timeout_micros: int = BATCH_TIMEOUT_MICROS,
               max_enqueued_batches: int = MAX_ENQUEUED_BATCHES, num_batch_threads: int = NUM_BATCH_THREADS) -> FastAPI:
    """The REST application over one model's repository.

    Args:
        repository: the model's versions.
        max_request_bytes: the largest request body; a larger one gets a 413.
        max_instances: the most instances in one predict request; more get a 413.
        max_request_pixels: the most pixels (width x height, from the image headers, added over
            the instances) in one predict request; more get a 413.
        max_batch_size: the most images in one model call.
        batch_timeout_micros: how long a batch that is not full waits for more images.
        max_enqueued_batches: the queue's bound in batches; once it holds that many batches'
            worth of images (or of max_request_pixels pixels), a request gets a 503.
        num_batch_threads: model calls that run at once, in threads off the event loop.
    """
    for setting, value in [("max_request_bytes", max_request_bytes), ("max_instances", max_instances),
                           ("max_request_pixels", max_request_pixels)]:
        if value < 1:
            raise ValueError(f"{setting} must be at least 1, got {value}")
    queue = BatchingQueue(predict, max_batch_size=max_batch_size, batch_timeout_micros=batch_timeout_micros,
                          max_enqueued_batches=max_enqueued_batches, num_batch_threads=num_batch_threads,
                          max_batch_pixels=max_request_pixels)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # The newest version is loaded and warmed before the server takes requests, as TF Serving does.
        if repository.versions():
            with contextlib.suppress(LookupError):
                await run_in_threadpool(repository.signature)
        yield
        queue.shutdown()

    app = FastAPI(title="headstart serve", description=__doc__, lifespan=lifespan)
    _add_status_routes(app, repository)
    _add_metadata_routes(app, repository)
    _add_predict_routes(app, _PredictRequests(repository, queue, max_request_bytes, max_instances,
                                              max_request_pixels))
    return app


def serve(serving_root: str, model_name: str, host: str, port: int, *,
          max_loaded_versions: int = MAX_LOADED_VERSIONS, **limits) -> None:
    """Runs the server until interrupted.

    Args:
        serving_root: the folder holding `<model_name>/<version>/`.
        model_name: the model served.
        host: the address to listen on.
        port: the port to listen on.
        max_loaded_versions: as in `ModelRepository`.
        limits: `create_app`'s request limits and batching parameters, by name.
    """
    import uvicorn

    app = create_app(ModelRepository(serving_root, model_name, max_loaded_versions), **limits)
    uvicorn.run(app, host=host, port=port, log_level="warning")
