"""A process that imports TensorFlow once and forks a copy of itself for each local step.

    python -m pipeline.local.step_fork_server SOCKET_PATH [MODULE ...]

Each step of a local run is a Python process that would import TensorFlow and Keras itself,
seconds of CPU per step (docs/performance.md). This server imports them once, at the start of the
run, (or the MODULEs given), then serves requests on a Unix socket (`step_fork_client.py` sends
them): the command line after `python`, the working directory, the environment and the client's stdin, stdout and
stderr. For each request it forks a supervisor, which forks the step's process and reports its
exit status; the server itself never waits, so it stays single-threaded and every fork starts
from the same state: TensorFlow imported, no TensorFlow runtime (thread pools, devices) started.

The step's process then runs as `python -m MODULE ARGS` would: its argv, working directory,
environment and file descriptors 0-2 are the client's, and it ends through the interpreter's
normal exit, so its atexit handlers (the step's resource figures, its fast exit) run as they do
in a fresh process. A step that runs on a cluster never comes here: its pod is its own process.
"""

import io
import json
import os
import runpy
import signal
import socket
import struct
import sys

# What every step that needs TensorFlow imports first; Keras pulls in scikit-learn, which the
# steps that use it (evaluate, the audit) then find loaded.
PRELOADED_MODULES = ("tensorflow", "keras")
# How often the server checks that the run that started it is still there.
PARENT_CHECK_SECONDS = 1.0
LENGTH = struct.Struct("!I")
STATUS = struct.Struct("!qi")  # the step's pid, then its exit status


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    """`size` bytes from the connection; fewer only if the other end closed it."""
    chunks = []
    while size:
        chunk = connection.recv(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(connection, LENGTH.size, 3)
    (length,) = LENGTH.unpack(header)
    return json.loads(receive_exactly(connection, length)), fds


def _become_step(request: dict, fds: list[int]) -> None:
    """Turns this forked process into `python ARGV` run by the client; returns only to exit."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # Fresh streams on the client's descriptors; the server's buffers were flushed before forking.
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    flag, module, *arguments = request["argv"]
    if flag != "-m":
        raise SystemExit(f"step fork server: only `python -m MODULE ...` is served, not {request['argv']}")
    # As `python -m` does: the working directory first on the path, the module's path as argv[0].
    sys.path[0] = request["cwd"]
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _supervise(connection: socket.socket, listener: socket.socket) -> None:
    """In the supervisor: forks the step, tells the client its pid, then its exit status."""
    listener.close()
    request, fds = _receive_request(connection)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the step's own children are its to wait for
    step = os.fork()
    if step == 0:
        connection.close()
        _become_step(request, fds)
        raise SystemExit(0)  # the module returned: a normal exit, atexit handlers and all
    for fd in fds:
        os.close(fd)
    connection.sendall(STATUS.pack(step, 0))
    _, status = os.waitpid(step, 0)
    connection.sendall(STATUS.pack(step, os.waitstatus_to_exitcode(status)))
    os._exit(0)


def serve(socket_path: str, preloaded_modules: tuple[str, ...] = PRELOADED_MODULES) -> None:
    """Imports `preloaded_modules`, then listens at `socket_path` and forks a step per request.

    The socket appears only once the imports are done (bound under another name, then renamed), so
    a step that comes earlier starts fresh rather than wait: a step that reuses its cached outputs
    needs no TensorFlow at all. The server ends when the process that started it does, or on
    SIGTERM.
    """
    parent = os.getppid()
    for name in preloaded_modules:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".binding")
    listener.listen(16)
    os.rename(socket_path + ".binding", socket_path)
    # Supervisors are reaped by the kernel: the server never waits, so it never blocks a request.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener.settimeout(PARENT_CHECK_SECONDS)
    while os.getppid() == parent:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        connection.settimeout(None)
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            _supervise(connection, listener)
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], tuple(sys.argv[2:]) or PRELOADED_MODULES)
