"""A step's work handed to a warm worker: its result, its output and its errors come back."""

import subprocess
import sys

from components.common import storage
from components.common.warm_start import WARM_DIR_ENV, run_work

LAUNCHER = """
import json, os, sys, tempfile
from components.common import step_resources
from components.common.warm_start import WarmWorkers, run_work

with WarmWorkers(tempfile.mkdtemp(prefix="warm-test-")):
    # builtins.print, by name, in the worker: its line reaches this process's stdout.
    run_work(print, end="printed by the worker\\n")
    peak = run_work(step_resources.peak_rss_mb)
    try:
        run_work(step_resources.storage.read_json, path="/nonexistent/headstart.json")
    except FileNotFoundError as error:
        caught = {"type": type(error).__name__, "notes": getattr(error, "__notes__", [])}
    print(json.dumps({"pid": os.getpid(), "peak": peak, "caught": caught,
                      "helpers": step_resources._helpers}))
"""


def test_the_work_runs_in_a_worker_that_imported_tensorflow_and_answers_as_it_would_here():
    completed = subprocess.run([sys.executable, "-c", LAUNCHER], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "printed by the worker" in lines
    import json

    found = json.loads(lines[-1])
    # The worker imported TensorFlow, Keras and Beam before it took the work: hundreds of MB.
    assert found["peak"] > 300
    assert found["caught"]["type"] == "FileNotFoundError"
    assert any("in the warm worker" in note for note in found["caught"]["notes"])
    # Each worker's peak and bytes written count toward the step that used it.
    assert len(found["helpers"]) == 3 and all(peak > 300 for peak, _ in found["helpers"])


def test_without_workers_offered_the_work_runs_in_this_process(tmp_path, monkeypatch):
    monkeypatch.delenv(WARM_DIR_ENV, raising=False)
    storage.write_json(str(tmp_path / "a.json"), {"here": True})
    assert run_work(storage.read_json, path=str(tmp_path / "a.json")) == {"here": True}
