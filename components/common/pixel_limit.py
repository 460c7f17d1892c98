"""The pixel limit: an image whose header claims more pixels than this is refused before decoding.

A few kilobytes of PNG can claim 30000 x 30000 pixels (2.7 GB decoded): a decompression bomb.
Reading the header costs nothing, so every decode the pipeline and the server do from bytes it
did not make checks it first. Bytes that Pillow cannot identify are left to the decoder, which
rejects them with its own reason.
"""

import io
import warnings

from PIL import Image

# 50 million pixels: an 8000 x 6000 photo passes; a 30000 x 30000 bomb does not.
MAX_PIXELS = 50_000_000


def _header_size(image_bytes: bytes) -> tuple[int, int] | None:
    """(width, height) as the header states them, or None where Pillow cannot identify the bytes.

    Raises:
        Image.DecompressionBombError: the header claims more than Pillow's own limit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image_bytes)) as image:  # reads the header only
                return image.size
    except Image.DecompressionBombError:
        raise
    except Exception:  # noqa: BLE001 - not identifiable here: the decoder decides and says why
        return None


def oversize_reason(image_bytes: bytes, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why the image is refused for its size, or None when it may be decoded."""
    try:
        size = _header_size(image_bytes)
    except Image.DecompressionBombError:
        return f"image too large: over {2 * Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
    if size is not None and size[0] * size[1] > max_pixels:
        return f"image too large: {size[0]}x{size[1]} pixels, the limit is {max_pixels}"
    return None


def header_pixels(image_bytes: bytes) -> int | None:
    """Width times height as the image's header states them, read without decoding.

    Returns:
        The pixel count; for a header past Pillow's own decompression-bomb limit, that limit
        (a lower bound: the claim is larger still); None where Pillow cannot identify the bytes.
    """
    try:
        size = _header_size(image_bytes)
    except Image.DecompressionBombError:
        return 2 * Image.MAX_IMAGE_PIXELS
    return None if size is None else size[0] * size[1]
