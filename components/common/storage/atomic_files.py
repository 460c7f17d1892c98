"""Atomic writes and small readers for artifact files.

Every file a step writes appears complete or not at all: it is written under a temporary name
in the same directory and renamed, which is atomic on one file system.
"""

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it to `path` if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp_path
        # mkstemp makes files private; artifacts are read by other users (serving, the UI).
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def write_text(path: str, text: str) -> None:
    """Writes a text file atomically."""
    with atomic_path(path) as tmp_path, open(tmp_path, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path: str, value: Any) -> None:
    """Writes a JSON file atomically, indented for people who open it."""
    write_text(path, json.dumps(value, indent=2) + "\n")


def read_json(path: str) -> Any:
    """Reads a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_lines(path: str, lines: list[str]) -> None:
    """Writes one item per line, atomically."""
    write_text(path, "".join(f"{line}\n" for line in lines))


def read_lines(path: str) -> list[str]:
    """Reads the non-empty lines of a text file."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
