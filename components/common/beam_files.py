"""Small-file reads and writes that work wherever Beam's own IO works: local paths and gs:// URIs.

The preprocess step runs on any Beam runner; on Dataflow its input and output are gs:// URIs,
which Python's `open` cannot reach, so the few small files it reads and writes beside Beam's
sinks (the manifest, labels, counts, stats) go through Beam's FileSystems too. Local files keep
the atomic write of `storage`.
"""

import json
from typing import Any

from apache_beam.io.filesystems import FileSystems

from components.common import gcs, storage


def join(directory: str, *names: str) -> str:
    return FileSystems.join(directory, *names)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_text(path: str) -> str:
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_text(path))


def read_lines(path: str) -> list[str]:
    return [line for line in read_text(path).splitlines() if line.strip()]


def write_text(path: str, text: str) -> None:
    """Writes a file: atomically renamed locally; a Cloud Storage object appears whole when closed."""
    if not gcs.is_gcs(path):
        storage.write_text(path, text)
        return
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path: str, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2) + "\n")


def write_lines(path: str, lines: list[str]) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))


def glob(pattern: str) -> list[str]:
    """Paths matching a glob, sorted."""
    return sorted(metadata.path for match in FileSystems.match([pattern]) for metadata in match.metadata_list)
