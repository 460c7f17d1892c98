"""Reading a CSV manifest of `uri,label` rows, without importing TensorFlow (the cache reads it too)."""

import csv
import os
from typing import Iterator


class ManifestError(ValueError):
    """A manifest row that is not `uri,label`."""


def manifest_rows(manifest: str) -> Iterator[tuple[str, str]]:
    """(path, label) per row; relative URIs are relative to the manifest; a `uri,label` header is skipped."""
    base = os.path.dirname(os.path.abspath(manifest))
    with open(manifest, newline="", encoding="utf-8") as f:
        for line_number, row in enumerate(csv.reader(f), start=1):
            if not row or (line_number == 1 and [c.strip().lower() for c in row[:2]] == ["uri", "label"]):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ManifestError(f"{manifest}:{line_number}: expected 'uri,label', got {row!r}")
            uri, label = row[0].strip(), row[1].strip()
            yield (uri if os.path.isabs(uri) else os.path.join(base, uri)), label
