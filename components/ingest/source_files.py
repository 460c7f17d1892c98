"""Which files are images: a name check, without TensorFlow, for the steps that only list files."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def is_image_file(name: str) -> bool:
    """Whether a file name has one of the image extensions the pipeline reads."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
