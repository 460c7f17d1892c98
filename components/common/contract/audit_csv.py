"""The audit's full ranked lists as a CSV a person edits, and the edited file read back at ingest.

The audit writes every label issue, outlier and near-duplicate pair it found, most suspicious first
within each kind. A person keeps the rows to act on and, for a relabel file, puts the right label in
`suggested`; `headstart run --exclude FILE` drops those images at ingest, `--relabel FILE` gives
them that label. A row names its image by `digest` (the file's SHA-256, which survives the source
being moved) and by `origin`; the digest is used where it is given, else the origin.

Light: no TensorFlow, so ingest and its cache read it.
"""

import csv
import hashlib
import io
from dataclasses import dataclass
from typing import Iterable

from components.common.storage import atomic_files, gcs

COLUMNS = ("kind", "rank", "origin", "digest", "split", "label", "suggested", "score", "matches")
LABEL_ISSUE, OUTLIER, NEAR_DUPLICATE = "label_issue", "outlier", "near_duplicate"


def write_issues(path: str, rows: Iterable[dict]) -> int:
    """Writes the rows (dicts with COLUMNS' keys; missing ones empty) atomically; returns how many."""
    count = 0
    with atomic_files.atomic_path(path) as partial, open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


class AuditFileError(ValueError):
    """An --exclude or --relabel file that cannot be used, naming the file and the line."""


@dataclass(frozen=True)
class ImageChoices:
    """What a person decided, by image: by digest where the file gives one, else by origin."""

    by_digest: dict[str, str]
    by_origin: dict[str, str]

    def find(self, digest: str, origin: str) -> str | None:
        """The value for an image (a new label, or the reason to exclude it), or None."""
        return self.by_digest.get(digest, self.by_origin.get(origin))

    def __len__(self) -> int:
        return len(self.by_digest) + len(self.by_origin)


def read_file(uri: str) -> bytes:
    """The bytes of an --exclude or --relabel file, a local path or a gs:// URI.

    Raises:
        AuditFileError: the file is not there.
    """
    try:
        if gcs.is_gcs(uri):
            return gcs.read_bytes(uri)
        with open(uri, "rb") as f:
            return f.read()
    except (OSError, gcs.RemoteStorageError) as error:
        raise AuditFileError(f"{uri}: cannot be read: {error}") from error


def file_digest(data: bytes) -> str:
    """What the ingest cache keys such a file on: its content, wherever it lies."""
    return hashlib.sha256(data).hexdigest()


def read_choices(path: str, data: bytes, *, relabel: bool) -> ImageChoices:
    """The images an edited audit CSV names: for a relabel file each with its new label (`suggested`).

    Args:
        path: the file's name, for messages.
        data: its bytes (`read_file`).
        relabel: a relabel file (each row needs a `suggested` label) rather than an exclude file.

    Raises:
        AuditFileError: no `origin` or `digest` column, a row naming no image, or (relabel) no
            `suggested` label on a row.
    """
    by_digest, by_origin = {}, {}
    with io.StringIO(data.decode("utf-8-sig"), newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        if not columns & {"origin", "digest"}:
            raise AuditFileError(f"{path}: needs an 'origin' or a 'digest' column (the audit's CSV has both), "
                                 f"found {sorted(columns)}")
        if relabel and "suggested" not in columns:
            raise AuditFileError(f"{path}: a relabel file needs a 'suggested' column with each image's new label")
        for line, row in enumerate(reader, start=2):
            digest, origin = (row.get("digest") or "").strip(), (row.get("origin") or "").strip()
            if not digest and not origin:
                raise AuditFileError(f"{path}:{line}: the row names no image (no digest, no origin)")
            value = (row.get("suggested") or "").strip() if relabel else (row.get("kind") or "listed").strip()
            if relabel and not value:
                raise AuditFileError(f"{path}:{line}: no label in 'suggested' for {origin or digest}")
            if digest:
                by_digest[digest] = value
            else:
                by_origin[origin] = value
    return ImageChoices(by_digest, by_origin)
