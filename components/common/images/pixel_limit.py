"""The pixel limit: an image whose header claims more pixels than this is refused before decoding.

A few kilobytes of PNG can claim 30000 x 30000 pixels (2.7 GB decoded): a decompression bomb.
Reading the header costs nothing, so every decode the pipeline and the server do from bytes it
did not make checks it first. Bytes that Pillow cannot identify are left to the decoder, which
rejects them with its own reason.
"""

import io
import struct
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


def gif_frame_sizes(image_bytes: bytes) -> list[tuple[int, int]] | None:
    """Each frame's (width, height) as a GIF's image descriptors state them; None for bytes that are no GIF.

    Read from the block structure, nothing decompressed. Pillow's size is the logical screen's
    (often the first frame's), but TensorFlow's GIF decoder reads every frame and gives the first
    at the size of the largest: a 1x1 first frame can hide a 12000x12000 second one.
    """
    if not image_bytes.startswith((b"GIF87a", b"GIF89a")) or len(image_bytes) < 13:
        return None
    data, frames = image_bytes, []

    def color_table(flags: int) -> int:
        return 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0

    def after_sub_blocks(position: int) -> int:
        while position < len(data) and data[position]:
            position += data[position] + 1
        return position + 1

    position = 13 + color_table(data[10])
    while position < len(data) and data[position] != 0x3B:
        if data[position] == 0x21:  # an extension: its label, then sub-blocks
            position = after_sub_blocks(position + 2)
        elif data[position] == 0x2C and position + 10 <= len(data):
            width, height = struct.unpack_from("<HH", data, position + 5)
            frames.append((width, height))
            # The local color table, the LZW code size, then the image data's sub-blocks.
            position = after_sub_blocks(position + 10 + color_table(data[position + 9]) + 1)
        else:
            break  # malformed past here: the frames found so far are all that can be counted
    return frames


def _claimed_pixels(image_bytes: bytes) -> tuple[int, str] | None:
    """(the pixels a decoder would allocate, as the header states them), or None where unidentified.

    Raises:
        Image.DecompressionBombError: the header claims more than Pillow's own limit.
    """
    size = _header_size(image_bytes)
    frames = gif_frame_sizes(image_bytes)
    if frames and frames != [size]:
        widest, tallest = max(width for width, _ in frames), max(height for _, height in frames)
        screen = size[0] * size[1] if size else 0
        # Every frame is read, then the first is laid out at the largest frame's size.
        pixels = max(screen, widest * tallest, sum(width * height for width, height in frames))
        return pixels, f"{len(frames)} GIF frame(s) of up to {widest}x{tallest} pixels, {pixels} in all"
    if size is None:
        return None
    return size[0] * size[1], f"{size[0]}x{size[1]} pixels"


def oversize_reason(image_bytes: bytes, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why the image is refused for its size, or None when it may be decoded."""
    try:
        claimed = _claimed_pixels(image_bytes)
    except Image.DecompressionBombError:
        return f"image too large: over {2 * Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
    if claimed is not None and claimed[0] > max_pixels:
        return f"image too large: {claimed[1]}, the limit is {max_pixels}"
    return None


def header_pixels(image_bytes: bytes) -> int | None:
    """The pixels the image's header claims, read without decoding (every frame of a GIF counted).

    Returns:
        The pixel count; for a header past Pillow's own decompression-bomb limit, that limit
        (a lower bound: the claim is larger still); None where Pillow cannot identify the bytes.
    """
    try:
        claimed = _claimed_pixels(image_bytes)
    except Image.DecompressionBombError:
        return 2 * Image.MAX_IMAGE_PIXELS
    return None if claimed is None else claimed[0]
