"""Feature vectors already computed, by image digest, so a run extracts only images it has not seen.

A store is a directory or a gs:// prefix for one base network, weights, image size and
preprocessing code (the caller keys it by them). Vectors are kept in chunks: `<id>.vectors.npy`
(float32, one row per image) written first, then `<id>.digests.npy`; a chunk counts only once its
digests file exists, so a run killed mid-write leaves nothing a later run would read. Chunks are
memory-mapped on read: the store is never loaded whole.

On gs:// the layout is the same, `<prefix>/<id>.vectors.npy` then `<prefix>/<id>.digests.npy`,
each created with `if_generation_match=0`. Memory-mapping needs local files, so opening the store
downloads every complete chunk into a temporary directory, and a chunk added is written there
and uploaded.
"""

import os
import tempfile
import uuid

import numpy as np

from components.common.storage import gcs

_DIGESTS = ".digests.npy"
_VECTORS = ".vectors.npy"


def _save_atomically(path: str, array: np.ndarray) -> None:
    tmp_path = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp_path, "wb") as f:
        np.save(f, array)
    os.replace(tmp_path, path)


def _download_chunks(uri: str, local_dir: str) -> None:
    """Copies the complete chunks under a gs:// store into `local_dir`, vectors before digests."""
    names = {name for name, _ in gcs.list_objects(uri) if "/" not in name}
    for name in sorted(names):
        if name.endswith(_DIGESTS):
            chunk = name[: -len(_DIGESTS)]
            for suffix in (_VECTORS, _DIGESTS):
                gcs.download_file(gcs.join(uri, chunk + suffix), os.path.join(local_dir, chunk + suffix))


class FeatureStore:
    """Vectors by image digest in one directory or gs:// prefix; `ignore_existing` makes it forget what it held.

    Attributes:
        location: where the store lives, a directory or a gs:// prefix.
        directory: the local directory the chunks are read from: `location` itself, or a
            temporary copy of it for a gs:// store.
    """

    def __init__(self, directory: str, ignore_existing: bool = False):
        self.location = directory
        self._scratch = None
        if gcs.is_gcs(directory):
            # Kept on the store: the directory goes when the store does, mapped chunks with it.
            self._scratch = tempfile.TemporaryDirectory(prefix="headstart-features-")
            self.directory = self._scratch.name
            if not ignore_existing:
                _download_chunks(directory, self.directory)
        else:
            self.directory = directory
            os.makedirs(directory, exist_ok=True)
        self._where: dict[str, tuple[str, int]] = {}
        self._open_chunk: tuple[str, np.ndarray] | None = None
        if not ignore_existing:
            for name in sorted(os.listdir(self.directory)):
                if name.endswith(_DIGESTS):
                    chunk = name[: -len(_DIGESTS)]
                    for row, digest in enumerate(np.load(os.path.join(self.directory, name))):
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
        # Digests last: they make the chunk count, here and for every later reader.
        for suffix, array in ((_VECTORS, np.asarray(vectors, np.float32)), (_DIGESTS, np.asarray(digests, dtype=str))):
            path = os.path.join(self.directory, chunk + suffix)
            _save_atomically(path, array)
            if gcs.is_gcs(self.location):
                gcs.upload_file(path, gcs.join(self.location, chunk + suffix))
        for row, digest in enumerate(digests):
            self._where[digest] = (chunk, row)

    def get(self, digest: str) -> np.ndarray:
        """The vector of an image; reads are sequential within a chunk, which stays mapped."""
        chunk, row = self._where[digest]
        if self._open_chunk is None or self._open_chunk[0] != chunk:
            vectors = np.load(os.path.join(self.directory, chunk + _VECTORS), mmap_mode="r")
            self._open_chunk = (chunk, vectors)
        return np.asarray(self._open_chunk[1][row])
