"""What preprocess records beside its examples: `stats.json`, read by every later step."""

import os

from components.common import storage

STATS = "stats.json"


def read_stats(examples_dir: str) -> dict:
    """Counts per split and class, rejects, image size and labels of a preprocessed examples dir."""
    return storage.read_json(os.path.join(examples_dir, STATS))


def split_files(examples_dir: str, split: str) -> list[str]:
    """The processed-example shards of one split: those preprocess recorded writing, in order.

    Not a glob: a retried run can leave an earlier attempt's shards in the same directory.
    """
    return [os.path.join(examples_dir, name) for name in read_stats(examples_dir)["shards"][split]]


def image_size(examples_dir: str) -> int:
    """The side of the square images preprocess wrote."""
    return read_stats(examples_dir)["image_size"]
