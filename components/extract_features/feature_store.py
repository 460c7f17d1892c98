"""Feature vectors already computed, by image digest, so a run extracts only images it has not seen.

A store is a directory for one base network, weights, image size and preprocessing code (the
caller keys the directory by them). Vectors are kept in chunks: `<id>.vectors.npy` (float32,
one row per image) written first, then `<id>.digests.npy`; a chunk counts only once its digests
file exists, so a run killed mid-write leaves nothing a later run would read. Chunks are
memory-mapped on read: the store is never loaded whole.
"""

import os
import uuid

import numpy as np

_DIGESTS = ".digests.npy"
_VECTORS = ".vectors.npy"


def _save_atomically(path: str, array: np.ndarray) -> None:
    tmp_path = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp_path, "wb") as f:
        np.save(f, array)
    os.replace(tmp_path, path)


class FeatureStore:
    """Vectors by image digest in one directory; `ignore_existing` makes it forget what it held."""

    def __init__(self, directory: str, ignore_existing: bool = False):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._where: dict[str, tuple[str, int]] = {}
        self._open_chunk: tuple[str, np.ndarray] | None = None
        if not ignore_existing:
            for name in sorted(os.listdir(directory)):
                if name.endswith(_DIGESTS):
                    chunk = name[: -len(_DIGESTS)]
                    for row, digest in enumerate(np.load(os.path.join(directory, name))):
                        self._where[str(digest)] = (chunk, row)

    def __contains__(self, digest: str) -> bool:
        return digest in self._where

    def __len__(self) -> int:
        return len(self._where)

    def add(self, digests: list[str], vectors: np.ndarray) -> None:
        """Stores one chunk of vectors, row i being the image with digest i."""
        if len(digests) != len(vectors):
            raise ValueError(f"{len(digests)} digests for {len(vectors)} vectors")
        if not digests:
            return
        chunk = uuid.uuid4().hex
        _save_atomically(os.path.join(self.directory, chunk + _VECTORS), np.asarray(vectors, np.float32))
        _save_atomically(os.path.join(self.directory, chunk + _DIGESTS), np.asarray(digests, dtype=str))
        for row, digest in enumerate(digests):
            self._where[digest] = (chunk, row)

    def get(self, digest: str) -> np.ndarray:
        """The vector of an image; reads are sequential within a chunk, which stays mapped."""
        chunk, row = self._where[digest]
        if self._open_chunk is None or self._open_chunk[0] != chunk:
            vectors = np.load(os.path.join(self.directory, chunk + _VECTORS), mmap_mode="r")
            self._open_chunk = (chunk, vectors)
        return np.asarray(self._open_chunk[1][row])
