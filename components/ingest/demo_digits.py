"""The offline demo: scikit-learn's handwritten digits rendered as small RGB images.

scikit-learn ships the 1,797 real 8x8 digit scans, so the demo needs no download. The source
task (digits 0 to 4) pretrains a small base network; the target task (digits 5 to 9) is what the
pipeline transfers it to, with few labelled training images.
"""

import io
from typing import Iterator

import numpy as np
from PIL import Image

SOURCE_TASK_DIGITS = (0, 1, 2, 3, 4)
TARGET_TASK_DIGITS = (5, 6, 7, 8, 9)
DEMO_IMAGE_SIZE = 32
# Labels are scarce in the target task: this many training images per class, the rest is test.
TARGET_TRAIN_PER_CLASS = 40


def render_digits(digits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Renders the scans of the given digits as RGB images.

    Returns:
        (images, targets): uint8 (N, 32, 32, 3) and int (N,) digit values, in data set order.
    """
    from sklearn.datasets import load_digits  # imported here: only the demo needs scikit-learn

    data = load_digits()
    keep = np.isin(data.target, digits)
    # The scans hold ink levels 0..16; draw dark ink on white paper, as a photo of a digit looks.
    ink = data.images[keep] / 16.0
    images = []
    for scan in ink:
        gray = Image.fromarray(np.uint8(255 * (1.0 - scan)), mode="L")
        gray = gray.resize((DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE), Image.Resampling.BICUBIC)
        images.append(np.asarray(gray.convert("RGB")))
    return np.stack(images), data.target[keep]


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def iter_target_task() -> Iterator[tuple[bytes, str, str, str]]:
    """Yields (png_bytes, label, origin, split) for the target task, digits 5 to 9.

    The first TARGET_TRAIN_PER_CLASS images of each digit are the (few) training labels; the rest
    are the test split. The eval split is carved out of train by preprocess.
    """
    images, targets = render_digits(TARGET_TASK_DIGITS)
    seen: dict[int, int] = {}
    for index, (image, target) in enumerate(zip(images, targets)):
        digit = int(target)
        seen[digit] = seen.get(digit, 0) + 1
        split = "train" if seen[digit] <= TARGET_TRAIN_PER_CLASS else "test"
        yield _png(image), f"digit_{digit}", f"demo:digits/{index}", split
