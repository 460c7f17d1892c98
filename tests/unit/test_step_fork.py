"""Steps forked from the step fork server run as `python -m MODULE ARGS` would, and without it too."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

# A step stand-in: what it was given, whether it was forked from the server (which preloaded the
# marker module), then an exit status of its choosing. Its atexit handler must run, as a step's
# resource figures are written from one.
PROBE = """
import atexit, json, os, sys
atexit.register(lambda: open("atexit-ran", "w").close())
forked = "xml.dom.minidom" in sys.modules
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "marker": os.environ.get("PROBE_MARKER"),
                  "forked": forked, "stdin": sys.stdin.read()}))
print("to stderr", file=sys.stderr)
if sys.argv[1] == "sleep":
    import time; time.sleep(60)
sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else 0)
"""


@pytest.fixture()
def server(tmp_path):
    socket_path = str(tmp_path / "fork.sock")
    process = subprocess.Popen([sys.executable, "-m", "pipeline.local.step_fork_server", socket_path,
                                "xml.dom.minidom"])
    deadline = time.monotonic() + 30
    while not os.path.exists(socket_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield socket_path
    process.terminate()
    process.wait(10)


def _client(socket_path: str, work, *args: str, **kwargs):
    (work / "probe_step.py").write_text(PROBE)
    env = {**os.environ, "PROBE_MARKER": "from the client"}
    command = [sys.executable, "-m", "pipeline.local.step_fork_client", socket_path, "-m", "probe_step", *args]
    return subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_forked_step_gets_the_clients_command_directory_environment_and_streams(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    client = _client(server, work, "3", "--flag", "value")
    stdout, stderr = client.communicate("the client's stdin", timeout=60)
    seen = json.loads(stdout)
    assert seen == {"argv": ["3", "--flag", "value"], "cwd": str(work), "marker": "from the client",
                    "forked": True, "stdin": "the client's stdin"}
    assert "to stderr" in stderr
    assert client.returncode == 3
    assert (work / "atexit-ran").exists()


def test_a_step_killed_by_a_signal_reports_it_as_a_shell_does(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    client = _client(server, work, "sleep")
    client.stdin.close()
    assert '"forked": true' in client.stdout.readline()
    client.terminate()  # forwarded to the step
    client.wait(30)
    assert client.returncode == 128 + signal.SIGTERM


def test_before_the_server_is_ready_the_step_runs_in_a_fresh_python(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    client = _client(str(tmp_path / "not-yet.sock"), work, "4")  # the server binds once it has imported
    stdout, stderr = client.communicate("", timeout=60)
    assert json.loads(stdout)["forked"] is False
    assert "unavailable" not in stderr
    assert client.returncode == 4
    assert (work / "atexit-ran").exists()


def test_a_server_that_stopped_answering_leaves_the_step_to_a_fresh_python_and_says_so(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))  # its file stays; nothing listens
    stale.close()
    client = _client(str(tmp_path / "stale.sock"), work, "5")
    stdout, stderr = client.communicate("", timeout=60)
    assert json.loads(stdout)["forked"] is False
    assert "step fork server unavailable" in stderr
    assert client.returncode == 5


def test_a_step_that_never_imports_tensorflow_starts_fresh_without_asking_the_server(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    client = _client(server, work, "0", "--function_to_execute", "ingest")
    stdout, stderr = client.communicate("", timeout=60)
    assert json.loads(stdout)["forked"] is False
    assert "unavailable" not in stderr
