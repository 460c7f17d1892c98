"""What preprocess records beside its examples: `stats.json`, read by every later step."""

import os

from components.common import storage

STATS = "stats.json"


def read_stats(examples_dir: str) -> dict:
    """Counts per split and class, rejects, image size and labels of a preprocessed examples dir."""
    return storage.read_json(os.path.join(examples_dir, STATS))


def image_size(examples_dir: str) -> int:
    """The side of the square images preprocess wrote."""
    return read_stats(examples_dir)["image_size"]
