"""A real-photo stand-in for speed: the fixture cat and dog photos made into many distinct JPEGs.

Each variant is a random crop (60 to 100% of each side), maybe mirrored, scaled so its longer
side is 320 to 520 pixels, and re-encoded at JPEG quality 70 to 95: real photo content that
decodes like real photos, in distinct files. Variants of one photo stay in one split, so the
pipeline's near-duplicate check does not drop test images as copies of training ones. Fair for
speed, memory and disk; not for accuracy, since variants of one photo are alike.
"""

import pathlib

import numpy as np

FIXTURE_PHOTOS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "cats_dogs"
# Every fifth source photo (and all its variants) is a test photo.
TEST_EVERY = 5


def fixture_photos_present() -> bool:
    """Whether ../shared/fixtures/cats_dogs holds the photos."""
    return FIXTURE_PHOTOS.is_dir() and any(FIXTURE_PHOTOS.rglob("*.jpg"))


def photo_variants(root: pathlib.Path, count: int, seed: int = 0,
                   source: pathlib.Path = FIXTURE_PHOTOS) -> pathlib.Path:
    """Writes `count` distinct JPEG variants of the photos under `source/<class>/` into `root/<split>/<class>/`.

    Returns:
        `root`, a train/test class-per-folder tree the pipeline and the plain script both read.
    """
    from PIL import Image, ImageOps

    photos = sorted(source.rglob("*.jpg"))
    rng = np.random.default_rng(seed)
    for index in range(count):
        number = index % len(photos)
        photo = photos[number]
        split = "test" if number % TEST_EVERY == 0 else "train"
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        crop_width, crop_height = (int(side * rng.uniform(0.6, 1.0)) for side in (width, height))
        left, top = rng.integers(0, width - crop_width + 1), rng.integers(0, height - crop_height + 1)
        image = image.crop((left, top, left + crop_width, top + crop_height))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        scale = rng.uniform(320, 520) / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
        path = root / split / photo.parent.name / f"{photo.stem}_{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=int(rng.integers(70, 96)))
    return root
