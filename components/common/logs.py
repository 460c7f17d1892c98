"""Logging for steps: progress lines a person can follow, TensorFlow's chatter kept out.

Lines a step logs through `logging` carry PROGRESS_PREFIX, which is how the command line picks
them out of a step's output and shows them while the rest goes to the run's log file.
"""

import logging
import os
import sys

PROGRESS_PREFIX = "headstart>"


def quiet_tensorflow() -> None:
    """Keeps TensorFlow's C++ and absl logs to warnings; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def setup_step_logging(level: int = logging.INFO) -> None:
    """Sends this process's `components.*` logs to stdout with the progress prefix."""
    quiet_tensorflow()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"{PROGRESS_PREFIX} %(message)s"))
    logger = logging.getLogger("components")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
