"""Local steps forked from one process that has already imported TensorFlow.

Every step of `headstart run` is still its own process, started by kfp.local's SubprocessRunner
with the compiled pipeline's command. Within `warm_steps()`, the `python3` of that command is
`python -m pipeline.local.step_fork_client SOCKET`, which has the step fork server
(`pipeline/local/step_fork_server.py`) fork the step's process from its copy with TensorFlow and Keras
imported. That import, seconds of CPU for every step that needs TensorFlow (docs/performance.md), is
paid once per run instead of once per step. Steps that come before the server is ready start fresh,
as without it: ingest (which never imports TensorFlow), usually preprocess, and every step of a
repeat run that reuses its cached outputs and so needs no TensorFlow.

What a step sees differs from a fresh process in its memory figure: a forked process counts only
the pages of TensorFlow's libraries that it touches itself, not those the import touched, so
`peak_rss_mb` reads lower than a pod's would, and a skipped fine-tune, which touches nothing,
reports about the server's own figure (docs/performance.md). `headstart run --cold-steps` starts
each step in a fresh Python, as a pod does; `make bench-scale` runs that way.

The hook is kfp.local's private `subprocess_task_handler.environment`, which the SubprocessRunner's
handler calls for the Python executable that replaces `python3` in each step's command;
tests/unit/test_kfp_local_hooks.py fails when a kfp release changes it.
"""

import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from kfp.local import subprocess_task_handler

SERVER_STOP_SECONDS = 10


@contextlib.contextmanager
def _python_command(command: str) -> Iterator[str]:
    """kfp.local's `environment()` for use_venv=False, with `command` in place of its Python."""
    yield command


@contextlib.contextmanager
def warm_steps(log_path: str) -> Iterator[None]:
    """Starts the step fork server and has kfp.local's SubprocessRunner start steps through it.

    Args:
        log_path: where the server's own output goes (TensorFlow's import messages, its errors).
    """
    with tempfile.TemporaryDirectory(prefix="headstart-steps-") as scratch:
        # A short path: Unix socket paths are limited to about a hundred bytes.
        socket_path = os.path.join(scratch, "fork.sock")
        with open(log_path, "a", encoding="utf-8") as log:
            server = subprocess.Popen([sys.executable, "-m", "pipeline.local.step_fork_server", socket_path],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        command = shlex.join([sys.executable, "-m", "pipeline.local.step_fork_client", socket_path])
        original = subprocess_task_handler.environment
        subprocess_task_handler.environment = lambda use_venv, **kwargs: (
            original(use_venv, **kwargs) if use_venv else _python_command(command))
        try:
            yield
        finally:
            subprocess_task_handler.environment = original
            server.terminate()
            try:
                server.wait(SERVER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
