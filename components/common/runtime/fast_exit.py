"""Ends a step's process without the interpreter's teardown once the step's output is written.

With TensorFlow loaded, the interpreter's teardown alone takes about a second on a small machine
(an immediate exit, a tenth of that), paid once per step. By then the
KFP executor has written its output file, the last thing a step does; nothing is lost by
skipping the teardown, and the atexit handlers registered after this one (logging, thread pools)
still run first. A step that failed never wrote the file, so it exits the normal way, with its
error and its exit status.
"""

import atexit
import json
import os
import sys


def _executor_output_file(argv: list[str]) -> str | None:
    """The output file named in the KFP executor's `--executor_input`, if this process is a step."""
    for index, argument in enumerate(argv[:-1]):
        if argument == "--executor_input":
            try:
                return json.loads(argv[index + 1])["outputs"]["outputFile"]
            except (ValueError, KeyError, TypeError):
                return None
    return None


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when a file is written again: its inode, size and modification time."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def exit_fast_once_output_written(argv: list[str] | None = None) -> None:
    """Makes this step process end with os._exit(0) at exit, if the executor wrote its output."""
    output_file = _executor_output_file(sys.argv if argv is None else argv)
    if not output_file:
        return
    # A file already there (a retried step's) does not count until this process rewrites it. Its
    # own stamp is compared, not the clock: file times come from the kernel's coarser clock and
    # can read earlier than a time.time() taken just before the write.
    before = _stamp(output_file)

    def exit_if_written() -> None:
        if os.path.isfile(output_file) and _stamp(output_file) != before:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    # atexit runs handlers last-registered first: this one, registered before TensorFlow is
    # imported, runs after TensorFlow's own.
    atexit.register(exit_if_written)
