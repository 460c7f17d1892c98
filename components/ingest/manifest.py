"""Reading a CSV manifest of `uri,label` rows, without importing TensorFlow (the cache reads it too).

A manifest may only point inside its own folder: a row whose path resolves elsewhere (`../`, an
absolute path, a symbolic link out) is not read. Such a row, or one without a uri or a label,
becomes a reject with its line number and reason; the other rows are ingested.
"""

import csv
import os
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class ManifestRow:
    """One row: the file it names, its label, and why it cannot be used (None when it can)."""

    line: int
    path: str
    label: str
    problem: str | None = None


def manifest_rows(manifest: str) -> Iterator[ManifestRow]:
    """Every row but a `uri,label` header; relative URIs are relative to the manifest's folder."""
    root = os.path.realpath(os.path.dirname(os.path.abspath(manifest)))
    with open(manifest, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or (line == 1 and [c.strip().lower() for c in row[:2]] == ["uri", "label"]):
                continue
            uri, label = (row[0].strip(), row[1].strip()) if len(row) >= 2 else ((row[0].strip() if row else ""), "")
            path = os.path.join(root, uri)
            if not uri or not label:
                yield ManifestRow(line, path, label, f"{manifest}:{line}: expected 'uri,label', got {row!r}")
            elif os.path.commonpath([os.path.realpath(path), root]) != root:
                yield ManifestRow(line, path, label,
                                  f"{manifest}:{line}: {uri} is outside the manifest's folder {root}: not read")
            else:
                yield ManifestRow(line, path, label)
