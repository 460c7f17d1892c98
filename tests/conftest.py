"""Shared test setup: the three tiers, the shared fixtures, tiny generated images."""

import functools
import http.server
import io
import json
import os
import pathlib
import struct
import threading

# Before TensorFlow is imported anywhere in the test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
MOBILENET_WEIGHTS = SHARED_FIXTURES / "mobilenet_2_5_224_tf_no_top.h5"
CATS_DOGS = SHARED_FIXTURES / "cats_dogs"

TIERS = {
    "unit": "a step's core on tiny generated data",
    "integration": "Beam TestPipeline, the compiled pipeline YAML, the CLI's argument checks",
    "e2e": "the whole pipeline through kfp.local",
    "containers": "the one container image, built by docker/build_image.sh, run with docker or podman",
}


def pytest_configure(config):
    for tier, text in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {text}")


def pytest_collection_modifyitems(items):
    """Each test is marked with its tier, taken from its folder, so `-m unit` selects it."""
    for item in items:
        tier = pathlib.Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def shared_fixtures() -> pathlib.Path:
    if not MOBILENET_WEIGHTS.exists() or not CATS_DOGS.exists():
        pytest.skip(f"{SHARED_FIXTURES} is absent: the real photos and MobileNet weights live there")
    return SHARED_FIXTURES


def make_image(color: tuple[int, int, int], size: tuple[int, int] = (40, 30), seed: int = 0) -> np.ndarray:
    """A small noisy image of one dominant color: two colors make two separable classes."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-30, 30, size=(size[1], size[0], 3))
    return np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)


def write_image(path: pathlib.Path, pixels: np.ndarray) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


CLASS_COLORS = {"red": (200, 40, 40), "blue": (40, 40, 200)}


def run_at_once(work, count: int) -> tuple[list, list[Exception]]:
    """Calls `work(index)` for index 0..count-1, each in its own thread, all at once.

    Returns:
        (what each call returned, in no order; the errors the calls raised).
    """
    results, errors = [], []

    def call(index):
        try:
            results.append(work(index))
        except Exception as error:  # noqa: BLE001 - returned to the test, which reports it
            errors.append(error)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.fixture
def image_tree(tmp_path) -> pathlib.Path:
    """A class-per-folder tree of 2 x 20 small images, JPEG and PNG, without split folders."""
    root = tmp_path / "images"
    for label, color in CLASS_COLORS.items():
        for index in range(20):
            suffix = "png" if index % 2 else "jpg"
            write_image(root / label / f"{label}_{index}.{suffix}", make_image(color, seed=index + 100 * len(label)))
    return root


@functools.cache
def decompression_bomb() -> bytes:
    """A PNG of about 100 KB whose header says 30000 x 30000 pixels (2.7 GB once decoded to RGB)."""
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bomb() -> bytes:
    """A GIF of about 107 KB: a 1x1 screen and first frame, then a 12000 x 12000 frame.

    Pillow reports 1x1; TensorFlow's decoder reads both frames and gives the first at 12000 x 12000
    (432 MB as RGB).
    """
    buffer = io.BytesIO()
    Image.new("P", (12000, 12000)).save(buffer, format="GIF")
    large = buffer.getvalue()
    flags = large[10]
    table = large[13:13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)]
    # One 1x1 frame: its image descriptor, LZW code size 2, a clear code then the end code.
    first = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x4c\x01\x00"
    return b"GIF89a" + struct.pack("<HHBBB", 1, 1, flags, 0, 0) + table + first + large[13 + len(table):]


class Webhook:
    """A chat webhook on a local port: records every JSON body; the first `failures` posts get `failure_status`."""

    def __init__(self, failures: int = 0, failure_status: int = 503):
        self.messages: list[dict] = []
        self.requests = 0
        self.failures = failures
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests += 1
                if hook.requests <= hook.failures:
                    self.send_response(failure_status)
                else:
                    hook.messages.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/headstart"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()
