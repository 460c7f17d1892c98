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


def oversize_reason(image_bytes: bytes, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why the image is refused for its size, or None when it may be decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image_bytes)) as image:  # reads the header only
                width, height = image.size
    except Image.DecompressionBombError:
        return f"image too large: over {2 * Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
    except Exception:  # noqa: BLE001 - not identifiable here: the decoder decides and says why
        return None
    if width * height > max_pixels:
        return f"image too large: {width}x{height} pixels, the limit is {max_pixels}"
    return None


def header_pixels(image_bytes: bytes) -> int | None:
    """Width times height as the image's header states them, read without decoding.

    Returns:
        The pixel count; for a header past Pillow's own decompression-bomb limit, that limit
        (a lower bound: the claim is larger still); None where Pillow cannot identify the bytes.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image_bytes)) as image:  # reads the header only
                width, height = image.size
    except Image.DecompressionBombError:
        return 2 * Image.MAX_IMAGE_PIXELS
    except Exception:  # noqa: BLE001 - not identifiable here: the decoder decides and says why
        return None
    return width * height
