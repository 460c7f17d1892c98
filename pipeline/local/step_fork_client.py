"""Runs `python ARGS` as a fork of the step fork server, or as a fresh Python where there is none.

    python -m pipeline.local.step_fork_client SOCKET_PATH -m MODULE [ARGS ...]

kfp.local's SubprocessRunner starts each step with this command in place of `python3` during a
local run (`pipeline/local/warm_steps.py`). It hands the server its command line, working directory,
environment and standard streams, forwards SIGINT and SIGTERM to the step, and exits with the
step's exit status. Where the server cannot be reached, it becomes the fresh Python process the
step would otherwise have been, as it does at once for the steps that never import TensorFlow
(ingest) and for any step that comes while the server is still importing (its socket appears
once it is ready). It imports nothing beyond the standard
library, so that it starts in a few hundredths of a second.
"""

import json
import os
import signal
import socket
import sys

from pipeline.local.step_fork_server import LENGTH, STATUS, receive_exactly

# Steps whose process never imports TensorFlow (tests/unit/test_light_imports.py): a fresh Python
# starts them at once and keeps their memory their own.
FRESH_STEPS = frozenset({"ingest"})


def _step_name(python_args: list[str]) -> str | None:
    """The component function a KFP executor command line runs, if it names one."""
    if "--function_to_execute" in python_args[:-1]:
        return python_args[python_args.index("--function_to_execute") + 1]
    return None


FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run_fresh(python_args: list[str], reason: str) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)  # exec keeps a blocked mask
    print(f"step fork server unavailable ({reason}); starting the step in a fresh Python", file=sys.stderr)
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *python_args])


def main(argv: list[str]) -> int:
    """Runs the step through the server at argv[0]; returns its exit status."""
    socket_path, *python_args = argv
    if _step_name(python_args) in FRESH_STEPS or not os.path.exists(socket_path):
        # No socket yet: the server is still importing, and starting fresh costs no more than waiting.
        os.execv(sys.executable, [sys.executable, *python_args])
    # Held until the step's pid is known, then forwarded to it: a signal that comes earlier waits.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)
    except OSError as error:
        _run_fresh(python_args, str(error))
    request = json.dumps({"argv": python_args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(connection, [LENGTH.pack(len(request))], [0, 1, 2])
    connection.sendall(request)
    started = receive_exactly(connection, STATUS.size)
    if len(started) < STATUS.size:
        # Nothing was forked yet: the server ended before taking the request.
        connection.close()
        _run_fresh(python_args, "it closed the connection")
    step, _ = STATUS.unpack(started)

    def forward(signal_number, _frame) -> None:
        try:
            os.kill(step, signal_number)
        except ProcessLookupError:
            pass

    for signal_number in FORWARDED_SIGNALS:
        signal.signal(signal_number, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    finished = receive_exactly(connection, STATUS.size)
    if len(finished) < STATUS.size:
        print(f"step fork server: lost the step (pid {step}) before it reported its exit status", file=sys.stderr)
        return 1
    _, exit_status = STATUS.unpack(finished)
    # A step killed by a signal reports it negated; a shell reports 128 plus the signal.
    return exit_status if exit_status >= 0 else 128 - exit_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
