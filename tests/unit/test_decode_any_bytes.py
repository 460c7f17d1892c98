"""Property: whatever bytes arrive as an image, decoding yields an example or a reject with a
reason, and the pixel limit's header check never raises."""

import hashlib
import io

import numpy as np
from apache_beam.pvalue import TaggedOutput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from components.common.contract.records import RawExample
from components.common.images.pixel_limit import MAX_PIXELS, gif_frame_sizes, header_pixels, oversize_reason
from components.preprocess.core import DecodeAndResize
from components.preprocess.splits import SplitPolicy
from tests.conftest import gif_bomb, make_image


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(make_image((120, 60, 200), size=(24, 18), seed=3)).save(buffer, format=fmt)
    return buffer.getvalue()


REAL_IMAGES = [encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]
# Arbitrary bytes, and real images cut short and with bytes overwritten: closer to what breaks decoders.
ANY_BYTES = st.one_of(
    st.binary(max_size=4096),
    st.builds(
        lambda image, cut, junk, at: (image[:cut] + junk + image[cut + len(junk):])[: max(cut, at)],
        st.sampled_from(REAL_IMAGES), st.integers(0, 2000), st.binary(max_size=16), st.integers(0, 4000),
    ),
)

decode = DecodeAndResize(16, ["cold", "warm"], SplitPolicy())
decode.setup()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_BYTES)
def test_any_bytes_become_an_example_or_a_reject_with_a_reason(data):
    example = RawExample(data, "warm", "x.jpg", hashlib.sha256(data).hexdigest())
    outputs = list(decode.process([example.serialize()]))
    if len(outputs) == 1:
        [reject] = outputs
        assert reject.tag == DecodeAndResize.REJECTS and reject.value["reason"]
        assert reject.value["origin"] == "x.jpg"
    else:  # an example, and its hash for the near-duplicate check
        (split, label, _), image_hash = outputs
        assert split in ("train", "eval", "test") and label == "warm"
        assert image_hash.tag == DecodeAndResize.HASHES and image_hash.value["digest"] == example.digest


@settings(max_examples=300, deadline=None)
@given(ANY_BYTES)
def test_the_pixel_limit_check_never_raises(data):
    assert oversize_reason(data) is None or oversize_reason(data).startswith("image too large")


def test_every_real_format_decodes():
    for data in REAL_IMAGES:
        output, image_hash = decode.process([RawExample(data, "cold", "y", "d").serialize()])
        assert not isinstance(output, TaggedOutput) and image_hash.tag == DecodeAndResize.HASHES
    assert np.asarray(Image.open(io.BytesIO(REAL_IMAGES[0]))).shape == (18, 24, 3)


def test_every_frame_of_a_gif_counts_against_the_pixel_limit():
    bomb = gif_bomb()
    assert len(bomb) < 120_000 and Image.open(io.BytesIO(bomb)).size == (1, 1)
    assert gif_frame_sizes(bomb) == [(1, 1), (12000, 12000)]
    assert "2 GIF frame(s) of up to 12000x12000 pixels" in oversize_reason(bomb)
    assert header_pixels(bomb) > MAX_PIXELS
    # An ordinary animation within the limit passes, counted frame by frame.
    frames = [Image.new("RGB", (40, 30), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert oversize_reason(buffer.getvalue()) is None and header_pixels(buffer.getvalue()) == 3 * 40 * 30
