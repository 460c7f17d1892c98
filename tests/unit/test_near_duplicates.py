"""Near-duplicate matching: perceptual hashes and their Hamming distances, on synthetic data."""

import numpy as np

from components.preprocess.near_duplicates import (
    HASH_BITS,
    MAX_DISTANCE,
    difference_hash,
    format_hash,
    nearest_within,
    parse_hashes,
)


def flipped(hash_words: np.ndarray, bits: list[int]) -> np.ndarray:
    """A copy of one (2,) uint64 hash with the given bit positions (0..127) inverted."""
    words = hash_words.copy()
    for bit in bits:
        words[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return words


def test_nearest_within_finds_the_nearest_reference_within_the_distance():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 2**63, size=(500, 2), dtype=np.uint64)
    queries = np.stack([
        flipped(references[7], [0, 70, 127]),                  # 3 bits from reference 7
        flipped(references[400], list(range(MAX_DISTANCE))),   # exactly at the limit
        flipped(references[3], list(range(MAX_DISTANCE + 1))),  # one bit past it
        rng.integers(0, 2**63, size=2, dtype=np.uint64),        # unrelated: about 64 bits from all
        flipped(references[250], list(range(60, 65))),          # across the word boundary
    ])

    found = nearest_within(queries, references, chunk_rows=2)  # chunks smaller than the queries

    assert [values.tolist() for values in found] == [[0, 1, 4], [7, 400, 250], [3, MAX_DISTANCE, 5]]


def test_nearest_within_prefers_the_closer_of_two_references():
    base = np.array([0x0123456789ABCDEF, 0xFEDCBA9876543210], dtype=np.uint64)
    references = np.stack([flipped(base, [1, 2, 3, 4]), flipped(base, [5])])

    queries, nearest, distances = nearest_within(base[None, :], references)

    assert (queries.tolist(), nearest.tolist(), distances.tolist()) == ([0], [1], [1])


def test_nearest_within_with_nothing_to_compare():
    hashes = np.ones((3, 2), dtype=np.uint64)
    for queries, references in ((hashes, hashes[:0]), (hashes[:0], hashes)):
        assert [values.tolist() for values in nearest_within(queries, references)] == [[], [], []]


def test_hashes_survive_their_text_form():
    values = [0, 1, 2**64, 2**128 - 1, 0x8000_0000_0000_0001_0000_0000_0000_0001]
    words = parse_hashes([format_hash(value) for value in values])
    assert words.dtype == np.uint64 and words.shape == (len(values), 2)
    assert [(int(high) << 64) | int(low) for high, low in words] == values


def test_difference_hash_is_stable_under_small_changes_and_differs_between_images():
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(64, 64, 3)), axis=0), axis=1)
    image = np.clip((smooth - smooth.min()) / np.ptp(smooth) * 255, 0, 255).astype(np.uint8)
    noisy = np.clip(image.astype(int) + rng.integers(-3, 4, size=image.shape), 0, 255).astype(np.uint8)
    other = np.ascontiguousarray(image[::-1, ::-1])

    def distance(a, b):
        return bin(difference_hash(a) ^ difference_hash(b)).count("1")

    assert 0 <= difference_hash(image) < 2**HASH_BITS
    assert distance(image, noisy) <= 4
    assert distance(image, other) > 3 * MAX_DISTANCE
    # Any size, gray or color, even smaller than the 9x8 grid, hashes.
    assert difference_hash(image[:5, :3, 0]) >= 0
