"""Small-file reads and writes that work wherever Beam's own IO works: local paths and gs:// URIs.

The preprocess step runs on any Beam runner; on Dataflow its input and output are gs:// URIs,
which Python's `open` cannot reach, so the few small files it reads and writes beside Beam's
sinks (the manifest, labels, counts, stats) go through Beam's FileSystems too. Local files keep
the atomic write of `storage`.
"""

import contextlib
import json
from typing import Any, BinaryIO, Iterator

from apache_beam.io.filesystems import FileSystems

from components.common.storage import atomic_files, gcs


def join(directory: str, *names: str) -> str:
    """Joins path components as Beam does for the path's file system."""
    return FileSystems.join(directory, *names)


def exists(path: str) -> bool:
    """Whether a local file or a gs:// object exists."""
    return FileSystems.exists(path)


def read_text(path: str) -> str:
    """Reads a UTF-8 text file."""
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def read_json(path: str) -> Any:
    """Reads a JSON file."""
    return json.loads(read_text(path))


def read_lines(path: str) -> list[str]:
    """Reads the non-empty lines of a text file."""
    return [line for line in read_text(path).splitlines() if line.strip()]


@contextlib.contextmanager
def open_for_writing(path: str) -> Iterator[BinaryIO]:
    """Opens a binary file for writing that appears at `path` only once it is whole.

    Locally it is written under a temporary name and renamed into place; on Cloud Storage the
    object exists once the file is closed.
    """
    if gcs.is_gcs(path):
        with FileSystems.create(path) as f:
            yield f
        return
    with atomic_files.atomic_path(path) as tmp_path, open(tmp_path, "wb") as f:
        yield f


def write_text(path: str, text: str) -> None:
    """Writes a file that appears whole (see `open_for_writing`)."""
    with open_for_writing(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path: str, value: Any) -> None:
    """Writes a JSON file that appears whole, indented for people who open it."""
    write_text(path, json.dumps(value, indent=2) + "\n")


def write_lines(path: str, lines: list[str]) -> None:
    """Writes one item per line, in a file that appears whole."""
    write_text(path, "".join(f"{line}\n" for line in lines))
