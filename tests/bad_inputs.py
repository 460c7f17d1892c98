"""A corpus of bad and awkward inputs, generated (never downloaded), and what should become of each.

`write_corpus(class_a, class_b)` writes files into two class folders of a source tree and returns
what the pipeline must make of them: how many become examples, how many are rejected (with a
reason), and how many are dropped as exact duplicates.
"""

import io
import os
import pathlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.conftest import decompression_bomb, make_image


@dataclass(frozen=True)
class Expected:
    examples: int
    rejected: int
    duplicates: int
    skipped: dict[str, int]
    files: int


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_corpus(class_a: pathlib.Path, class_b: pathlib.Path) -> Expected:
    photo = Image.fromarray(make_image((180, 90, 40), size=(64, 48), seed=11))
    jpeg = _encoded(photo, "JPEG")
    good = {
        "alpha.png": _encoded(photo.convert("RGBA"), "PNG"),
        "sixteen_bit.png": _encoded(Image.fromarray((np.asarray(photo.convert("L")).astype(np.uint16) * 256)),
                                    "PNG"),
        "grayscale.jpg": _encoded(photo.convert("L"), "JPEG"),
        "cmyk.jpg": _encoded(photo.convert("CMYK"), "JPEG"),
        "palette.gif": _encoded(photo.convert("P"), "GIF"),
        "animated.gif": _encoded(photo.convert("P"), "GIF", save_all=True,
                                 append_images=[Image.fromarray(make_image((20, 200, 20), size=(64, 48), seed=12))
                                                .convert("P")]),
        "bitmap.bmp": _encoded(photo, "BMP"),
        "web.webp": _encoded(photo, "WEBP"),
        "exif_rotated.jpg": _encoded(photo, "JPEG", exif=_rotated_exif()),
        "one_pixel.png": _encoded(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
        "with spaces and ünïcödé 猫.jpg": _encoded(Image.fromarray(make_image((30, 30, 220), size=(40, 40), seed=13)),
                                                 "JPEG"),
    }
    bad = {
        "zero_bytes.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "text_file.jpg": b"these are notes, not a photo\n",
        "bomb.png": decompression_bomb(),
    }
    for name, data in {**good, **bad}.items():
        (class_a / name).write_bytes(data)
    os.symlink(class_a / "loop_b.jpg", class_a / "loop_a.jpg")  # a symbolic link loop: unreadable
    os.symlink(class_a / "loop_a.jpg", class_a / "loop_b.jpg")
    (class_a / "same_twice.jpg").write_bytes(jpeg)  # the same image twice in one class: a duplicate
    (class_a / "same_twice_copy.jpg").write_bytes(jpeg)
    conflicting = _encoded(Image.fromarray(make_image((90, 90, 90), size=(32, 32), seed=14)), "PNG")
    (class_a / "both_labels.png").write_bytes(conflicting)  # the same image under two labels
    (class_b / "both_labels.png").write_bytes(conflicting)
    (class_a / "notes.txt").write_text("taken in May\n")  # not images: skipped, and counted
    (class_b / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return Expected(examples=len(good) + 1 + 1, rejected=len(bad) + 2 + 1, duplicates=1,
                    skipped={"hidden file": 1, "not an image file (.txt)": 1},
                    files=len(good) + len(bad) + 2 + 2 + 2 + 2)


def _rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return exif.tobytes()
