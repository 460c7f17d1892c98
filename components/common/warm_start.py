"""A step's work in a process that imported TensorFlow while the previous step ran.

Every step that needs TensorFlow is its own process, and importing TensorFlow, Keras and Beam
costs seconds each time. On this machine's runs (`headstart run`, kfp.local's subprocess runner)
the local runner keeps one spare worker process that has already imported them, started while
the previous step works (`WarmWorkers`). A step decides on its own whether it must work (its cache
check needs no TensorFlow); only then does `run_work` hand the work to the spare: the function's
name, its arguments, the step's environment, working directory, stdout and stderr. The worker runs
it, answers with the result (or the exception), and exits, so no state passes from one step to
the next. Where no spare is offered (a cluster, a container, the tests), the work runs in the
step's own process, as it would anyway.
"""

import importlib
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable

from components.common import step_resources

# The folder where spare workers listen, one socket each; set by the local runner for its steps.
WARM_DIR_ENV = "HEADSTART_WARM_WORKERS"
# How long a step waits for a spare still importing before it does the work itself.
CLAIM_SECONDS = 300.0
# How long a step looks for a spare that the runner is still starting.
SPARE_START_SECONDS = 5.0
_READY = b"R"
_HEADER = struct.Struct("!Q")

logger = logging.getLogger(__name__)


def _send(connection: socket.socket, value: Any, fds: list[int] | None = None) -> None:
    body = pickle.dumps(value)
    if fds:
        socket.send_fds(connection, [_HEADER.pack(len(body))], fds)
    else:
        connection.sendall(_HEADER.pack(len(body)))
    connection.sendall(body)


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(connection: socket.socket, with_fds: int = 0) -> tuple[Any, list[int]]:
    if with_fds:
        header, fds, _, _ = socket.recv_fds(connection, _HEADER.size, with_fds)
        header += _receive_exactly(connection, _HEADER.size - len(header))
    else:
        header, fds = _receive_exactly(connection, _HEADER.size), []
    return pickle.loads(_receive_exactly(connection, _HEADER.unpack(header)[0])), fds


def _sockets(directory: str) -> list[str]:
    """The sockets of the spares waiting in `directory`, oldest first."""
    try:
        return sorted(name for name in os.listdir(directory) if name.endswith(".sock"))
    except OSError:
        return []


def _claim_spare() -> socket.socket | None:
    """A connection to a spare worker that has accepted this step, or None where there is none."""
    directory = os.environ.get(WARM_DIR_ENV)
    if not directory or not os.path.isdir(directory):
        return None
    # The runner starts the next spare as soon as one is claimed: give it a moment to listen.
    deadline = time.monotonic() + SPARE_START_SECONDS
    while not _sockets(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in _sockets(directory):
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(os.path.join(directory, name))
            connection.settimeout(CLAIM_SECONDS)
            if connection.recv(1) == _READY:  # sent once its imports are done and it took this step
                connection.settimeout(None)
                return connection
        except OSError:
            pass
        connection.close()
    return None


def run_work(function: Callable[..., Any], **arguments: Any) -> Any:
    """Runs `function(**arguments)` in a spare worker if the local runner offers one, else here.

    Args:
        function: a module-level function; it and its arguments and result must pickle.
        **arguments: its keyword arguments.

    Returns:
        What the function returned.

    Raises:
        Exception: what the function raised, with the worker's traceback as a note.
    """
    connection = _claim_spare()
    if connection is None:
        return function(**arguments)
    with connection:
        logger.info("using a warm worker: TensorFlow is already imported")
        sys.stdout.flush()
        sys.stderr.flush()
        _send(connection, (function.__module__, function.__qualname__, arguments, dict(os.environ), os.getcwd()),
              fds=[sys.stdout.fileno(), sys.stderr.fileno()])
        (outcome, value, used), _ = _receive(connection)
    step_resources.add_helper_process(*used)
    if outcome == "error":
        error, remote_traceback = value
        error.add_note(f"in the warm worker:\n{remote_traceback}")
        raise error
    return value


def _serve_one(socket_path: str) -> None:
    """The worker: imports, then runs the one step that claims it, then exits."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(1)
    # Bound before the imports, so a step that arrives meanwhile waits for them instead of
    # importing everything again itself.
    import apache_beam  # noqa: F401
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    connection, _ = listener.accept()
    os.unlink(socket_path)  # claimed: the next step finds the next spare
    listener.close()
    connection.sendall(_READY)
    (module, name, arguments, environment, directory), (stdout, stderr) = _receive(connection, with_fds=2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(directory)
    from components.common.logs import setup_step_logging

    setup_step_logging()
    try:
        function = getattr(importlib.import_module(module), name)
        reply = ("ok", function(**arguments))
    except Exception as error:  # handed back to the step, which raises it
        reply = ("error", (error, traceback.format_exc()))
    sys.stdout.flush()
    sys.stderr.flush()
    used = (step_resources.peak_rss_mb(), step_resources.bytes_written())
    try:
        _send(connection, (*reply, used))
    except (pickle.PicklingError, TypeError, AttributeError):
        _send(connection, ("error", (RuntimeError(repr(reply[1])), traceback.format_exc()), used))
    connection.close()
    os._exit(0)  # the step has its answer; the interpreter's teardown would only cost time


class WarmWorkers:
    """Keeps one spare worker importing or waiting while a local run's steps run.

    Use as a context manager around the run; it sets `HEADSTART_WARM_WORKERS` for the steps.
    """

    def __init__(self, directory: str):
        self._directory = directory
        self._processes: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_one_spare, name="warm-workers", daemon=True)
        self._count = 0

    def _spare_waiting(self) -> bool:
        return bool(_sockets(self._directory))

    def _start_one(self) -> None:
        self._count += 1
        path = os.path.join(self._directory, f"{self._count:04d}.sock")
        self._processes.append(subprocess.Popen(
            [sys.executable, "-m", "components.common.warm_start", path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        # Its socket appears once it has started; until then it is not counted as waiting.
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and self._processes[-1].poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _keep_one_spare(self) -> None:
        while not self._stop.is_set():
            if not self._spare_waiting():
                self._start_one()
            self._stop.wait(0.1)

    def __enter__(self) -> "WarmWorkers":
        os.makedirs(self._directory, exist_ok=True)
        os.environ[WARM_DIR_ENV] = self._directory
        self._start_one()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        os.environ.pop(WARM_DIR_ENV, None)
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for name in os.listdir(self._directory):
            os.unlink(os.path.join(self._directory, name))
        os.rmdir(self._directory)


if __name__ == "__main__":
    _serve_one(sys.argv[1])
