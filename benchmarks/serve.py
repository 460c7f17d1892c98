"""Serving under concurrent clients: `headstart serve` as users run it, against clients on this machine.

    python -m benchmarks.serve [--seconds S] [--settings NAME=FLAGS ...] [--models tta tta2 single]
                               [--output runs/serve.json]

Trains the default model (averaging four views) and, with --models, the same averaging two views
(tta2) or without test-time augmentation (single), on the fixture photos (MobileNet alpha 0.25 at 224 pixels, the
shared ImageNet weights), through the whole pipeline. Then, for each model and each --settings
entry (a name and the `serve` flags it adds, such as "b16=--max-batch-size 16"), it starts
`headstart serve` in its own process and runs each load for S seconds:
    1, 4 and 16 clients, each sending one full-size photo per request, back to back;
    2 clients each sending 32 photos per request (the batched load: what the model gives when
    the client batches).
Before the loads, it times the first requests (1 photo, then 32) a freshly started server
answers, for the version as pushed and for a copy without its warmup records.
A refused request (503) is counted and sent again at once, as an impatient client would. The
table gives images answered per second, the latency of a request (p50 and p99) and the share
refused. Clients and server share the machine's cores, as the measurements in issue 27 did.
"""

import argparse
import base64
import glob
import http.client
import json
import os
import pathlib
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.bench import SHARED_WEIGHTS
from benchmarks.photos import FIXTURE_PHOTOS
from components.common.contract.artifact_files import METRICS
from components.common.contract.warmup_requests import WARMUP_FILE

LOADS = [(1, 1), (4, 1), (16, 1), (2, 32)]  # (clients, images per request)
MODELS = {"tta": {}, "tta2": {"test_time_views": 2}, "single": {"test_time_augmentation": False}}


def train(model_name: str, knobs: dict, work: pathlib.Path) -> list[str]:
    """Pushes `model_name` into work/serving: the pipeline's defaults on the fixture photos, plus `knobs`.

    Returns the views its `serving_default` averages, as the evaluation recorded them.
    """
    from pipeline.definition.config import PipelineConfig
    from pipeline.local.local_run import run_locally

    config = PipelineConfig(source=str(FIXTURE_PHOTOS), alpha=0.25, base_weights=str(SHARED_WEIGHTS),
                            serving_root=str(work / "serving"), cache_root=str(work / "cache"),
                            model_name=model_name, edge_export=False, **knobs)
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        outcome = run_locally(config, str(work / "runs"), terminal=quiet)
    if not outcome.succeeded:
        raise RuntimeError(f"training {model_name} failed: {outcome.error}")
    if not outcome.summary["pushed_uri"]:
        raise RuntimeError(f"{model_name} was not pushed: {outcome.summary['push_reason']}")
    newest_metrics = max(glob.glob(str(work / "runs" / "**" / METRICS), recursive=True), key=os.path.getmtime)
    with open(newest_metrics, encoding="utf-8") as f:
        return json.load(f)["views"]


def free_port() -> int:
    """A port no one listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`headstart serve` in its own process, ready when entered."""

    def __init__(self, serving_root: pathlib.Path, model_name: str, flags: list[str]):
        self.port = free_port()
        self.model_name = model_name
        self._command = [sys.executable, "-m", "pipeline.cli.commands", "serve", "--serving-root", str(serving_root),
                         "--model-name", model_name, "--port", str(self.port), *flags]

    def __enter__(self):
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"`{shlex.join(self._command)}` exited with {self._process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", f"/v1/models/{self.model_name}")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer within 120 s")

    def __exit__(self, *_):
        self._process.terminate()
        self._process.wait(30)


def request_bodies(photos: list[bytes], per_request: int) -> list[bytes]:
    """Predict bodies of `per_request` photos each, cycling through the photos."""
    encoded = [{"b64": base64.b64encode(photo).decode()} for photo in photos]
    return [json.dumps({"instances": [encoded[(start + i) % len(encoded)] for i in range(per_request)]}).encode()
            for start in range(0, len(encoded), per_request)]


def client(port: int, path: str, bodies: list[bytes], stop_at: float, record: list) -> None:
    """Sends bodies back to back over one kept-alive connection until stop_at; records (status, seconds, images)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    index = 0
    while time.monotonic() < stop_at:
        body = bodies[index % len(bodies)]
        index += 1
        started = time.monotonic()
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        images = len(json.loads(answer)["predictions"]) if response.status == 200 else 0
        record.append((response.status, time.monotonic() - started, images))


def run_load(server: Server, photos: list[bytes], clients: int, per_request: int, seconds: float) -> dict:
    """`clients` clients of `per_request` photos a request against the server for `seconds`."""
    path = f"/v1/models/{server.model_name}:predict"
    bodies = request_bodies(photos, per_request)
    # Warm: the model loads, and TensorFlow traces the batch sizes this load will send.
    warm_stop = time.monotonic() + 3
    warm = [threading.Thread(target=client, args=(server.port, path, bodies, warm_stop, [])) for _ in range(clients)]
    records = [[] for _ in range(clients)]
    stop_at = warm_stop + seconds
    threads = [threading.Thread(target=client, args=(server.port, path, bodies, stop_at, record))
               for record in records]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [entry for record in records for entry in record]
    answered = [entry for entry in everything if entry[0] == 200]
    latencies = sorted(seconds for status, seconds, _ in answered)
    other = sorted({status for status, _, _ in everything if status not in (200, 503)})
    return {
        "clients": clients, "images_per_request": per_request, "requests": len(everything),
        "images_per_second": sum(images for _, _, images in answered) / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
        "refused": sum(1 for status, _, _ in everything if status == 503) / max(1, len(everything)),
        "other_statuses": other,
    }


def first_requests(serving_root: pathlib.Path, model_name: str, photos: list[bytes]) -> dict:
    """Milliseconds of the first 1-photo and 32-photo requests a new server answers, with and without warmup."""
    cold_name = model_name + "_without_warmup"
    shutil.copytree(serving_root / model_name, serving_root / cold_name)
    for version in (serving_root / cold_name).iterdir():
        shutil.rmtree(version / os.path.dirname(WARMUP_FILE), ignore_errors=True)
    timings = {}
    for name in (model_name, cold_name):
        with Server(serving_root, name, []) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            for size in (1, 32):
                body = request_bodies(photos, size)[0]
                started = time.monotonic()
                connection.request("POST", f"/v1/models/{name}:predict", body=body,
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"the first request to {name} got {response.status}")
                timings[f"{'with' if name == model_name else 'without'}_warmup_{size}_ms"] = \
                    1000 * (time.monotonic() - started)
    return timings


def fixture_jpegs() -> list[bytes]:
    """The fixture's full-size photos, as a client would upload them."""
    return [path.read_bytes() for path in sorted(FIXTURE_PHOTOS.glob("*/*.jpg"))]


def main(argv=None) -> int:
    """Trains the models, serves each under every setting and load, prints the table and saves it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="each load's duration (default: %(default)s)")
    parser.add_argument("--settings", nargs="+", default=["defaults="], metavar="NAME=FLAGS",
                        help="serve settings to compare: a name, '=', and `headstart serve` flags (default: the "
                        "defaults)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["tta"],
                        help="tta: the default model (four views averaged); tta2: averaging two views; single: "
                        "without test-time augmentation (default: tta)")
    parser.add_argument("--output", default="runs/serve.json", help="where the JSON goes (default: %(default)s)")
    args = parser.parse_args(argv)
    if not FIXTURE_PHOTOS.is_dir() or not SHARED_WEIGHTS.exists():
        parser.error(f"needs the fixture photos in {FIXTURE_PHOTOS} and the weights {SHARED_WEIGHTS}")
    settings = []
    for entry in args.settings:
        name, separator, flags = entry.partition("=")
        if not separator or not name:
            parser.error(f"--settings entries are NAME=FLAGS, got {entry!r}")
        settings.append((name, shlex.split(flags)))
    photos = fixture_jpegs()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        work = pathlib.Path(scratch)
        views = {}
        for model in args.models:
            print(f"training {model} ...", flush=True)
            views[model] = train(model, MODELS[model], work)
            print(f"{model}: serving_default averages the views {', '.join(views[model])}", flush=True)
        first = {model: first_requests(work / "serving", model, photos) for model in args.models}
        for model, timings in first.items():
            print(f"{model}: first requests of a new server, ms: "
                  + ", ".join(f"{key[:-3]} {value:.0f}" for key, value in timings.items()), flush=True)
        for model in args.models:
            for name, flags in settings:
                with Server(work / "serving", model, flags) as server:
                    for clients, per_request in LOADS:
                        result = run_load(server, photos, clients, per_request, args.seconds)
                        result.update(model=model, views=views[model], setting=name, flags=flags)
                        results.append(result)
                        print(f"{model:<7} {name:<12} {clients:>3} clients x {per_request:>2} images: "
                              f"{result['images_per_second']:6.1f} images/s, p50 {result['p50_ms']:6.0f} ms, "
                              f"p99 {result['p99_ms']:6.0f} ms, refused {100 * result['refused']:5.1f}%"
                              + (f", other statuses {result['other_statuses']}" if result["other_statuses"] else ""),
                              flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"seconds": args.seconds, "photos": len(photos), "first_requests": first, "results": results},
                  f, indent=2)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
