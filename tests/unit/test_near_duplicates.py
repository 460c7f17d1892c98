"""Near-duplicate matching: perceptual hashes, their Hamming distances and the aligned second look,
on synthetic data."""

import numpy as np

from components.common.images import near_duplicates
from components.common.images.near_duplicates import (
    HASH_BITS,
    MAX_DISTANCE,
    MAX_THUMBNAIL_DISTANCE,
    _area_weights,
    _views,
    confirmed_copies,
    difference_hash,
    format_hash,
    hash_and_thumbnail,
    parse_hashes,
    picture_distance,
    thumbnail,
)


def flipped(hash_words: np.ndarray, bits: list[int]) -> np.ndarray:
    """A copy of one (2,) uint64 hash with the given bit positions (0..127) inverted."""
    words = hash_words.copy()
    for bit in bits:
        words[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return words


def smooth_image(seed: int, side: int = 64) -> np.ndarray:
    """A photo-like image: smooth random shapes, not noise."""
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(side, side, 3)), axis=0), axis=1)
    return np.clip((smooth - smooth.min()) / np.ptp(smooth) * 255, 0, 255).astype(np.uint8)


def test_copies_need_a_close_hash():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 2**63, size=(500, 2), dtype=np.uint64)
    queries = np.stack([
        flipped(references[7], [0, 70, 127]),                  # 3 bits from reference 7
        flipped(references[400], list(range(MAX_DISTANCE))),   # exactly at the limit
        flipped(references[3], list(range(MAX_DISTANCE + 1))),  # one bit past it
        rng.integers(0, 2**63, size=2, dtype=np.uint64),        # unrelated: about 64 bits from all
        flipped(references[250], list(range(60, 65))),          # across the word boundary
    ])
    same_picture = thumbnail(smooth_image(1))  # every picture alike: the hash alone decides here

    found = confirmed_copies(queries, [same_picture] * len(queries), references, [same_picture] * len(references))

    assert [(query, reference, distance) for query, reference, distance, _ in found] == [
        (0, 7, 3), (1, 400, MAX_DISTANCE), (4, 250, 5)]


def test_a_close_hash_is_not_enough_when_the_pictures_differ():
    """Handwritten digits of one class are within a few bits of each other, yet different digits."""
    query_hash = np.array([[0x0123456789ABCDEF, 0xFEDCBA9876543210]], dtype=np.uint64)
    references = np.stack([query_hash[0], flipped(query_hash[0], [5])])
    pictures = [thumbnail(smooth_image(seed)) for seed in (2, 3, 4)]

    assert confirmed_copies(query_hash, pictures[:1], references, pictures[1:]) == []
    # The same picture behind the farther hash is found, past the nearer one that differs.
    [(query, reference, distance, apart)] = confirmed_copies(query_hash, pictures[:1], references,
                                                             [pictures[1], pictures[0]])
    assert (query, reference, distance, apart) == (0, 1, 1, 0.0)


def test_a_cropped_copy_is_alike_once_aligned_and_another_picture_is_not():
    image = smooth_image(5, side=200)
    cropped = image[5:195, 5:195]  # 2.5% off each side
    resized_crop = (_area_weights(190, 64) @ cropped.astype(float).transpose(2, 0, 1) @ _area_weights(190, 64).T)
    original = _area_weights(200, 64) @ image.astype(float).transpose(2, 0, 1) @ _area_weights(200, 64).T

    def views(pixels):
        return _views(thumbnail(np.clip(pixels.transpose(1, 2, 0), 0, 255).astype(np.uint8)))

    assert picture_distance(views(original), views(resized_crop)) <= MAX_THUMBNAIL_DISTANCE
    other = _area_weights(200, 64) @ smooth_image(6, side=200).astype(float).transpose(2, 0, 1) @ _area_weights(
        200, 64).T
    assert picture_distance(views(original), views(other)) > 2 * MAX_THUMBNAIL_DISTANCE


def test_copies_found_do_not_depend_on_the_views_kept_or_the_rows_compared_at_once(monkeypatch):
    """Many variants of a few pictures: every image has copies, and references are looked at again and again."""
    rng = np.random.default_rng(3)
    bases = [smooth_image(seed, side=32).astype(float) for seed in range(4)]
    hashes, pictures = [], []
    for index in range(60):
        image = np.clip(bases[index % 4] + rng.normal(0, 3, bases[0].shape), 0, 255).astype(np.uint8)
        image_hash, picture = hash_and_thumbnail(image)
        hashes.append(format_hash(image_hash))
        pictures.append(picture)
    hashes = parse_hashes(hashes)

    kept_all = confirmed_copies(hashes, pictures, hashes, pictures, same_set=True)
    monkeypatch.setattr(near_duplicates, "REFERENCE_VIEWS_KEPT", 1)
    kept_one = confirmed_copies(hashes, pictures, hashes, pictures, same_set=True)
    # 7 rows at a time: the last of 9 chunks is shorter, and each chunk skips its own diagonal.
    monkeypatch.setattr(near_duplicates, "CHUNK_PAIRS", 7 * len(hashes))
    in_chunks = confirmed_copies(hashes, pictures, hashes, pictures, same_set=True)

    assert len(kept_all) > 40 and kept_one == kept_all and in_chunks == kept_all


def test_nothing_to_compare():
    hashes = np.ones((3, 2), dtype=np.uint64)
    pictures = [thumbnail(smooth_image(7))] * 3
    assert confirmed_copies(hashes, pictures, hashes[:0], []) == []
    assert confirmed_copies(hashes[:0], [], hashes, pictures) == []


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


def test_the_hash_and_thumbnail_from_one_grayscale_equal_each_computed_alone():
    for image in (smooth_image(11, side=97), smooth_image(12)[:40, :70, 1]):  # color and gray, odd sizes
        assert hash_and_thumbnail(image) == (difference_hash(image), thumbnail(image))


def test_blank_frames_are_no_copies_of_each_other_nor_of_a_photo():
    black, white, grey = (np.full((64, 64, 3), value, dtype=np.uint8) for value in (0, 255, 128))
    noisy_grey = np.clip(grey + np.random.default_rng(3).normal(0, 0.5, grey.shape), 0, 255).astype(np.uint8)
    photo = smooth_image(7)
    references = [hash_and_thumbnail(image) for image in (white, grey, photo)]
    queries = [hash_and_thumbnail(image) for image in (black, noisy_grey, photo)]

    found = confirmed_copies(parse_hashes([format_hash(h) for h, _ in queries]), [t for _, t in queries],
                             parse_hashes([format_hash(h) for h, _ in references]), [t for _, t in references])

    assert [(query, reference) for query, reference, _, _ in found] == [(2, 2)]  # the photo alone
