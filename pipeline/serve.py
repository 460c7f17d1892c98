"""`headstart serve`: the newest pushed version over TF Serving's REST API.

The same requests a client sends to TF Serving or KServe's TensorFlow predictor work here:
    GET  /v1/models/NAME                                  version status
    GET  /v1/models/NAME/versions/N                       one version's status
    POST /v1/models/NAME:predict                          {"instances": [{"b64": "<JPEG, base64>"}, ...]}
    POST /v1/models/NAME/versions/N:predict               the same, against version N
Answers are in TF Serving's row format: {"predictions": [{"probabilities": [...], "class_id": 1,
"class_name": "dogs", "class_names": [...]}, ...]}. A newly pushed version is picked up on the
next request, without a restart. Versions are chosen by `serving_layout.existing_versions`, the
rule the push and the champion lookup follow: an integer folder counts only once it holds
`saved_model.pb`, so a folder copied by hand without it is never served.
"""

import base64
import binascii
import json
import logging
import os
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from components.common.pixel_limit import oversize_reason
from components.common.serving_layout import existing_versions, model_directory

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 20 * 1024 * 1024


class BadRequest(ValueError):
    """The request cannot be answered as sent (HTTP 400)."""


class ModelRepository:
    """Loads a model's versions from the serving root on demand, keeping the loaded ones."""

    def __init__(self, serving_root: str, model_name: str):
        self.model_name = model_name
        self.model_dir = model_directory(serving_root, model_name)
        self._loaded: dict[int, Any] = {}
        self._lock = threading.Lock()

    def versions(self) -> list[int]:
        return existing_versions(self.model_dir)

    def signature(self, version: int | None = None):
        """(version, serving_default) of a version, the newest when None.

        Raises:
            LookupError: no such version (or none at all yet).
        """
        versions = self.versions()
        if not versions:
            raise LookupError(f"no version of {self.model_name} under {self.model_dir} yet")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise LookupError(f"{self.model_name} has no version {version}; it has {versions}")
        with self._lock:
            if version not in self._loaded:
                import tensorflow as tf

                logger.info("loading %s version %d", self.model_name, version)
                self._loaded[version] = tf.saved_model.load(os.path.join(self.model_dir, str(version)))
            loaded = self._loaded[version]
        return version, loaded.signatures["serving_default"]


def _image_bytes(instance: Any, index: int) -> bytes:
    """The encoded image of one instance: {"b64": ...} or {"image_bytes": {"b64": ...}}."""
    if isinstance(instance, dict) and "image_bytes" in instance:
        instance = instance["image_bytes"]
    if not isinstance(instance, dict) or not isinstance(instance.get("b64"), str):
        raise BadRequest(f'instance {index}: expected {{"b64": "<base64 image>"}}, got {str(instance)[:80]}')
    try:
        return base64.b64decode(instance["b64"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f"instance {index}: not valid base64: {error}") from error


def predict(signature, body: Any) -> list[dict]:
    """Runs serving_default over a request body; returns one prediction per instance."""
    import tensorflow as tf

    if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
        raise BadRequest('expected a JSON object {"instances": [{"b64": "..."}, ...]}')
    images = [_image_bytes(instance, index) for index, instance in enumerate(body["instances"])]
    for index, image in enumerate(images):
        if reason := oversize_reason(image):
            raise BadRequest(f"instance {index}: {reason}")
    try:
        outputs = signature(image_bytes=tf.constant(images))
    except tf.errors.InvalidArgumentError as error:
        raise BadRequest(f"an instance is not a decodable image: {error.message.splitlines()[0]}") from error
    return [
        {
            "probabilities": outputs["probabilities"][row].numpy().tolist(),
            "class_id": int(outputs["class_id"][row]),
            "class_name": outputs["class_name"][row].numpy().decode(),
            "class_names": [name.decode() for name in outputs["class_names"][row].numpy()],
        }
        for row in range(len(images))
    ]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(repository: ModelRepository, max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The REST application over one model's repository."""
    app = FastAPI(title="headstart serve", description=__doc__)
    name = repository.model_name

    def status(versions: list[int]) -> dict:
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]}

    async def answer(request: Request, model: str, version: int | None) -> JSONResponse:
        if model != name:
            return _error(404, f"no model named {model!r}; this server serves {name!r}")
        if int(request.headers.get("content-length") or 0) > max_request_bytes:
            return _error(413, f"request larger than {max_request_bytes} bytes")
        raw = await request.body()
        if len(raw) > max_request_bytes:
            return _error(413, f"request larger than {max_request_bytes} bytes")
        try:
            body = json.loads(raw)
            served_version, signature = repository.signature(version)
            return JSONResponse({"predictions": predict(signature, body), "model_version": str(served_version)})
        except LookupError as error:
            return _error(404, str(error))
        except (BadRequest, ValueError) as error:
            return _error(400, str(error))

    @app.get("/v1/models/{model}")
    def model_status(model: str):
        if model != name:
            return _error(404, f"no model named {model!r}; this server serves {name!r}")
        versions = repository.versions()
        # TF Serving reports the version it serves: the newest.
        return status(versions[-1:])

    @app.get("/v1/models/{model}/versions/{version}")
    def version_status(model: str, version: int):
        if model != name or version not in repository.versions():
            return _error(404, f"no version {version} of {model!r}")
        return status([version])

    @app.post("/v1/models/{model}:predict")
    async def predict_newest(model: str, request: Request):
        return await answer(request, model, None)

    @app.post("/v1/models/{model}/versions/{version}:predict")
    async def predict_version(model: str, version: int, request: Request):
        return await answer(request, model, version)

    return app


def serve(serving_root: str, model_name: str, host: str, port: int) -> None:
    """Runs the server until interrupted."""
    import uvicorn

    app = create_app(ModelRepository(serving_root, model_name))
    uvicorn.run(app, host=host, port=port, log_level="warning")
