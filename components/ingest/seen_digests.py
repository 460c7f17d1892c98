"""The digests ingest has kept, with each one's label and origin, in an SQLite file rather than in memory.

Deduplication must remember every image it kept; at 50,000 images a dict of hex digests, labels
and origins grew ingest's peak memory by 1.84 times over 5,000. SQLite keeps the table on disk
behind a bounded page cache, and the step's memory stays flat at any count.
"""

import sqlite3


class SeenDigests:
    """Digest -> (label, origin) of the first copy kept, in an SQLite database at `path`; close it when done."""

    def __init__(self, path: str):
        self._db = sqlite3.connect(path)
        # A scratch table: nothing to recover after a crash, so no journal and no syncs.
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE kept (digest TEXT PRIMARY KEY, label TEXT, origin TEXT) WITHOUT ROWID")

    def first(self, digest: str) -> tuple[str, str] | None:
        """The label and origin of the image kept with this digest, or None if none was."""
        row = self._db.execute("SELECT label, origin FROM kept WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else (row[0], row[1])

    def add(self, digest: str, label: str, origin: str) -> None:
        """Remembers the image kept with this digest."""
        self._db.execute("INSERT INTO kept VALUES (?, ?, ?)", (digest, label, origin))

    def close(self) -> None:
        """Closes the database; its file is the caller's to remove."""
        self._db.close()
