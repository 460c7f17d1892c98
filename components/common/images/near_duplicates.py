"""Perceptual hashes of processed images, and the test images that are near copies of training ones.

Ingest drops byte-identical duplicates only. A re-encoded, resized or slightly cropped copy of a
photo has another digest, so it can land in train and in test and make test accuracy a measure of
memory. A difference hash (dHash) survives those edits: the image is shrunk to a 9x8 grayscale,
each of 64 bits says whether a cell is brighter than its right-hand neighbour, and 64 more say the
same of the transposed image (each cell against the one below).

Measured on the 200 real photos of the cats_dogs fixture, processed at 224 and at 64 pixels alike,
as Hamming distances over the 128 bits: a JPEG re-encode (quality 20 to 40) or a 10% resize of a
photo is 0 to 7 bits from it; a 5% crop (2.5% off each edge) is within 16 bits for 98% of the
photos (median 9, 95th percentile 14); two distinct photos are 31 bits apart at the least over the
19,900 pairs (0.1st percentile 40, mean 64). `MAX_DISTANCE` keeps a 15-bit margin below the
closest distinct pair because each test image meets every training image, so a rare false match
multiplies at 50,000 images. A 64-bit horizontal hash alone separates worse: crops reach 19 bits
while distinct photos come down to 9.
"""

import base64
import functools
import json
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

HASH_BITS = 128
MAX_DISTANCE = 16
# Query-reference pairs compared at once, in one vectorized pass: each takes 8 bytes of uint64
# work memory, so a chunk takes 8 MB however many references there are, where a fixed number of
# query rows would take memory in proportion to the references.
CHUNK_PAIRS = 1 << 20

_GRID_CELLS, _GRID_STEPS = 8, 9
_LUMA = np.array([0.299, 0.587, 0.114])


@functools.lru_cache(maxsize=64)
def _area_weights(source: int, target: int) -> np.ndarray:
    """A (target, source) matrix that averages `source` pixels into `target` equal cells by overlap.

    Cached, and read-only so that no caller changes the cached copy: processed images share a size.
    """
    edges = np.arange(source + 1) * (target / source)  # pixel boundaries, in cell units
    cells = np.arange(target)[:, None]
    overlap = np.clip(np.minimum(edges[1:], cells + 1) - np.maximum(edges[:-1], cells), 0, None)
    weights = overlap / overlap.sum(axis=1, keepdims=True)
    weights.flags.writeable = False
    return weights


def _gray(pixels: np.ndarray) -> np.ndarray:
    """An RGB (or grayscale) uint8 image as float64 luma."""
    gray = pixels.astype(np.float64)
    return gray @ _LUMA if gray.ndim == 3 else gray


def _gradient_bits(gray: np.ndarray) -> np.ndarray:
    """64 bits: is each cell of a 9-wide, 8-high grid brighter than its right-hand neighbour."""
    height, width = gray.shape
    grid = _area_weights(height, _GRID_CELLS) @ gray @ _area_weights(width, _GRID_STEPS).T
    return (grid[:, :-1] > grid[:, 1:]).ravel()


def difference_hash(pixels: np.ndarray) -> int:
    """The 128-bit difference hash of an RGB (or grayscale) uint8 image.

    Args:
        pixels: an array of shape (height, width, 3) or (height, width), of any size.

    Returns:
        The hash as an unsigned integer: the high 64 bits compare horizontal neighbours, the low
        64 vertical ones.
    """
    return _hash_of_gray(_gray(pixels))


def _hash_of_gray(gray: np.ndarray) -> int:
    bits = np.concatenate([_gradient_bits(gray), _gradient_bits(gray.T)])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def format_hash(value: int) -> str:
    """A hash as 32 hex digits: JSON numbers above 2**53 lose bits in many readers."""
    return f"{value:032x}"


def parse_hashes(texts: list[str]) -> np.ndarray:
    """Hex hashes as an (n, 2) uint64 array, high word first."""
    words = [(int(text[:-16] or "0", 16), int(text[-16:], 16)) for text in texts]
    return np.array(words, dtype=np.uint64).reshape(len(texts), 2)


# The second look. Many distinct images are close in hash: handwritten digits of one class scanned
# at 8x8 pixels, say (465 of the demo's 696 test digits are within 16 bits of a training digit).
# A pair the hash finds is confirmed only when the pictures agree once aligned: each image keeps a
# 32x32 grayscale thumbnail; one is cropped by 0 to 5.5% per side (in 0.5% steps) to line up with
# the other, both are shrunk to 12x12 and standardized, and their mean absolute difference must be
# at most MAX_THUMBNAIL_DISTANCE. Measured with 64-pixel processing: the 200 fixture photos against
# their JPEG re-encodes are at most 0.018 apart, against 10% resizes 0.005, against 5% crops 0.083;
# the 465 close demo digits are 0.111 apart at the least.
THUMBNAIL_SIDE = 32
COMPARED_SIDE = 12
CROPS = tuple(step * 0.005 for step in range(12))
MAX_THUMBNAIL_DISTANCE = 0.095
# A thumbnail whose grey levels spread less than this (standard deviation, of 255) is featureless:
# a blank or single-colour frame. Its hash is all zeros and its standardized views are flat, so it
# would match every other featureless frame whatever its colour; it is never called a copy.
FEATURELESS_SPREAD = 2.0
# References a test image is checked against, nearest hash first.
CANDIDATES = 8
# References whose aligned views are kept while looking for copies (about 14 KB each).
REFERENCE_VIEWS_KEPT = 4096


def thumbnail(pixels: np.ndarray) -> bytes:
    """A THUMBNAIL_SIDE-square grayscale of an image, as uint8 bytes."""
    return _thumbnail_of_gray(_gray(pixels))


def _thumbnail_of_gray(gray: np.ndarray) -> bytes:
    small = _area_weights(gray.shape[0], THUMBNAIL_SIDE) @ gray @ _area_weights(gray.shape[1], THUMBNAIL_SIDE).T
    return np.clip(np.rint(small), 0, 255).astype(np.uint8).tobytes()


def hash_and_thumbnail(pixels: np.ndarray) -> tuple[int, bytes]:
    """`difference_hash(pixels)` and `thumbnail(pixels)`, from one grayscale of the image."""
    gray = _gray(pixels)
    return _hash_of_gray(gray), _thumbnail_of_gray(gray)


def _crop_weights(crop: float) -> np.ndarray:
    """(COMPARED_SIDE, THUMBNAIL_SIDE) weights: `crop` of each side cut off, the rest averaged into cells."""
    low, high = crop * THUMBNAIL_SIDE, (1 - crop) * THUMBNAIL_SIDE
    cells = low + (high - low) * np.arange(COMPARED_SIDE + 1) / COMPARED_SIDE
    edges = np.arange(THUMBNAIL_SIDE + 1, dtype=np.float64)
    overlap = np.clip(np.minimum(edges[None, 1:], cells[1:, None]) - np.maximum(edges[None, :-1], cells[:-1, None]),
                      0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


_CROP_WEIGHTS = [_crop_weights(crop) for crop in CROPS]


def _views(thumb: bytes | np.ndarray) -> np.ndarray:
    """(len(CROPS), COMPARED_SIDE, COMPARED_SIDE): the thumbnail at each crop, standardized."""
    image = np.frombuffer(thumb, dtype=np.uint8).reshape(THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float64)
    views = np.stack([weights @ image @ weights.T for weights in _CROP_WEIGHTS])
    views -= views.mean(axis=(1, 2), keepdims=True)
    spread = views.std(axis=(1, 2), keepdims=True)
    return views / np.where(spread > 1e-6, spread, 1.0)


def is_featureless(thumb: bytes | np.ndarray) -> bool:
    """Whether a thumbnail is a blank or single-colour frame (see FEATURELESS_SPREAD)."""
    return float(np.frombuffer(thumb, dtype=np.uint8).std()) < FEATURELESS_SPREAD


def picture_distance(first: np.ndarray, second: np.ndarray) -> float:
    """How far apart two images' views (see `_views`) are at their best alignment, either one cropped."""
    return float(min(np.abs(first - second[0]).mean(axis=(1, 2)).min(),
                     np.abs(first[0] - second).mean(axis=(1, 2)).min()))


def confirmed_copies(query_hashes: np.ndarray, query_thumbnails: Sequence[bytes] | np.ndarray,
                     reference_hashes: np.ndarray, reference_thumbnails: Sequence[bytes] | np.ndarray, *,
                     same_set: bool = False) -> list[tuple[int, int, int, float]]:
    """The queries that are near copies of a reference: close in hash, and alike once aligned.

    With `same_set`, queries and references are one list: an image is not its own copy. A
    featureless image (`is_featureless`) is no copy of anything, nor anything a copy of it.

    Returns:
        (query index, reference index, hash distance, picture distance) per copy found, in
        query order; of several references that pass, the one nearest in hash.
    """
    query_hashes = np.asarray(query_hashes, dtype=np.uint64).reshape(-1, 2)
    reference_hashes = np.asarray(reference_hashes, dtype=np.uint64).reshape(-1, 2)
    # A bounded cache: where most images have near copies (a set of crops of a few photos), one
    # view per image would grow with the data (14 KB each, 700 MB at 50,000 images).
    reference_view = functools.lru_cache(maxsize=REFERENCE_VIEWS_KEPT)(
        lambda index: None if is_featureless(reference_thumbnails[index]) else _views(reference_thumbnails[index]))

    found = []
    rows_at_once = max(1, CHUNK_PAIRS // max(1, len(reference_hashes)))
    for start in range(0, len(query_hashes) if len(reference_hashes) else 0, rows_at_once):
        chunk = query_hashes[start:start + rows_at_once]
        distances = np.zeros((len(chunk), len(reference_hashes)), dtype=np.uint8)
        for word in range(2):
            distances += np.bitwise_count(chunk[:, word, None] ^ reference_hashes[None, :, word])
        if same_set:
            rows = np.arange(len(chunk))
            distances[rows, start + rows] = np.iinfo(np.uint8).max
        for row in np.flatnonzero(distances.min(axis=1) <= MAX_DISTANCE):
            if is_featureless(query_thumbnails[start + row]):
                continue
            order = np.argsort(distances[row], kind="stable")[:CANDIDATES]
            query_view = _views(query_thumbnails[start + row])
            for reference in order[distances[row, order] <= MAX_DISTANCE]:
                view = reference_view(int(reference))
                if view is None:
                    continue
                apart = picture_distance(query_view, view)
                if apart <= MAX_THUMBNAIL_DISTANCE:
                    found.append((start + int(row), int(reference), int(distances[row, reference]), apart))
                    break
    return found


@dataclass(frozen=True)
class HashedImages:
    """Preprocess's per-image hash records (hashes.jsonl), compact: arrays, not one dict per image.

    Sorted by digest: Beam writes in any order, and sorted, a tie between two equally near images
    resolves alike every run. Arrays, because preprocess and the audit hold every image's record
    at once: a parsed JSON dict per image takes several times the thumbnail it carries
    (docs/performance.md, 'Near copies').
    """

    digests: list[str]
    origins: list[str]
    labels: list[str]
    splits: list[str]
    hashes: np.ndarray  # (n, 2) uint64, see `parse_hashes`
    thumbnails: np.ndarray  # (n, THUMBNAIL_SIDE**2) uint8

    def subset(self, indices: Sequence[int]) -> "HashedImages":
        """The images at `indices`, in that order."""
        return HashedImages([self.digests[i] for i in indices], [self.origins[i] for i in indices],
                            [self.labels[i] for i in indices], [self.splits[i] for i in indices],
                            self.hashes[list(indices)], self.thumbnails[list(indices)])

    def record(self, index: int) -> dict:
        """One image's origin, split, label and digest."""
        return {"origin": self.origins[index], "split": self.splits[index], "label": self.labels[index],
                "digest": self.digests[index]}


def read_hashed_images(lines: Iterable[str | bytes]) -> HashedImages:
    """Reads hashes.jsonl's records ({split, label, digest, origin, hash, thumbnail in base64}) one line at a time.

    Give it an open file rather than a list of lines: the file's lines are never all in memory.
    """
    digests, origins, labels, splits, hash_texts, pictures = [], [], [], [], [], bytearray()
    for line in lines:
        image = json.loads(line)
        digests.append(image["digest"])
        origins.append(image["origin"])
        labels.append(sys.intern(image["label"]))
        splits.append(sys.intern(image["split"]))
        hash_texts.append(image["hash"])
        pictures += base64.b64decode(image["thumbnail"])
    order = sorted(range(len(digests)), key=digests.__getitem__)
    thumbnails = np.frombuffer(pictures, dtype=np.uint8).reshape(len(digests), THUMBNAIL_SIDE ** 2)
    return HashedImages(digests, origins, labels, splits, parse_hashes(hash_texts), thumbnails).subset(order)
