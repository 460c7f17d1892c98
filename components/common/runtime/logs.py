"""Logging for steps: progress lines a person can follow, TensorFlow's chatter kept out.

Lines a step logs through `logging` carry PROGRESS_PREFIX, which is how the command line picks
them out of a step's output and shows them while the rest goes to the run's log file.
"""

import contextlib
import logging
import os
import sys
from typing import Iterator

PROGRESS_PREFIX = "headstart>"


def quiet_tensorflow() -> None:
    """Keeps TensorFlow's C++ and absl logs to warnings; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr_to(path: str) -> Iterator[None]:
    """Sends what native code writes to stderr into a file for the duration of the block.

    TensorFlow prints its CUDA probing at import time straight to file descriptor 2, before any
    log level applies; the command line imports TensorFlow inside this so a person sees none of it.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly(log_path: str) -> None:
    """Imports TensorFlow and probes devices with their native logs sent to `log_path`."""
    quiet_tensorflow()
    with native_stderr_to(log_path):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def setup_step_logging(level: int = logging.INFO) -> None:
    """Sends this process's `components.*` logs to stdout with the progress prefix."""
    quiet_tensorflow()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"{PROGRESS_PREFIX} %(message)s"))
    logger = logging.getLogger("components")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
