"""A local HTTP server that answers the KFP v2beta1 REST calls the SDK client makes, and records them.

No Kubeflow Pipelines server can run on these machines; this lets the tests check what
`headstart submit`, `schedule` and `runs` really send, through the real `kfp.Client`.
"""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def _answer(method: str, path: str) -> dict:
    if path == f"{API}/healthz":
        return {"multi_user": False}
    if method == "GET" and path == f"{API}/experiments":
        return {"experiments": [], "total_size": 0}
    if method == "POST" and path == f"{API}/experiments":
        return {"experiment_id": "exp-1", "display_name": "headstart"}
    if method == "POST" and path == f"{API}/runs":
        return {"run_id": "run-1", "display_name": "headstart", "state": "PENDING"}
    if method == "GET" and path == f"{API}/runs":
        return {"runs": [{"run_id": "run-1", "display_name": "headstart nightly", "state": "SUCCEEDED",
                          "created_at": "2026-11-27T03:00:00Z"},
                         {"run_id": "run-2", "display_name": "headstart retrain", "state": "RUNNING",
                          "created_at": "2026-11-28T03:00:00Z"}], "total_size": 2}
    if method == "POST" and path == f"{API}/recurringruns":
        return {"recurring_run_id": "recurring-1", "display_name": "headstart-retraining"}
    if method == "GET" and path == f"{API}/recurringruns":
        return {"recurringRuns": [
            {"recurring_run_id": "recurring-2", "display_name": "headstart-nightly", "status": "DISABLED",
             "trigger": {"cron_schedule": {"cron": "0 0 1 * * *"}}, "created_at": "2026-11-28T03:00:00Z"},
            {"recurring_run_id": "recurring-1", "display_name": "headstart-retraining", "status": "ENABLED",
             "trigger": {"cron_schedule": {"cron": "0 0 3 * * 1"}}, "created_at": "2026-11-27T03:00:00Z"}],
            "total_size": 2}
    return {}


class KfpRecorder:
    """Serves on a free loopback port; `requests` holds every request, in order."""

    def __init__(self):
        self.requests: list[Recorded] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(Recorded(self.command, url.path, parse_qs(url.query),
                                                  self.rfile.read(length) if length else b""))
                body = json.dumps(_answer(self.command, url.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == f"{API}{path}"]
