"""What preprocess records beside its examples.

`stats.json`, read by every later step, and the near-duplicate test images it dropped.
"""

import os

from components.common.storage import atomic_files

STATS = "stats.json"
# One JSON line per test image dropped as a near copy of a train or eval image.
NEAR_DUPLICATES = "near_duplicates.jsonl"
# The stats.json key counting them.
NEAR_DUPLICATES_DROPPED = "near_duplicates_dropped"
# The stats.json key saying the examples hold encoded images rather than pixels.
COMPACT_EXAMPLES = "compact_examples"
# The images --exclude and --relabel changed at ingest: {"excluded": [...], "relabelled": [...]}.
EDITS = "edits.json"
# The stats.json key holding the source the examples came from, as the run gave it.
SOURCE = "source"


def read_stats(examples_dir: str) -> dict:
    """Counts per split and class, rejects, image size and labels of a preprocessed examples dir."""
    return atomic_files.read_json(os.path.join(examples_dir, STATS))


def split_files(examples_dir: str, split: str) -> list[str]:
    """The processed-example shards of one split: those preprocess recorded writing, in order.

    Not a glob: a retried run can leave an earlier attempt's shards in the same directory.
    """
    return [os.path.join(examples_dir, name) for name in read_stats(examples_dir)["shards"][split]]


def image_size(examples_dir: str) -> int:
    """The side of the square images preprocess wrote."""
    return read_stats(examples_dir)["image_size"]


def compact(examples_dir: str) -> bool:
    """Whether the examples hold encoded images, which their readers decode, rather than pixels."""
    return bool(read_stats(examples_dir).get(COMPACT_EXAMPLES, False))


def near_duplicates_dropped(examples_dir: str) -> int:
    """How many test images preprocess dropped as near copies of train or eval images (0 if it did not look)."""
    return read_stats(examples_dir).get(NEAR_DUPLICATES_DROPPED, 0)


def source(examples_dir: str) -> str | None:
    """The source the examples were ingested from, as the run gave it (None for older examples)."""
    return read_stats(examples_dir).get(SOURCE)


def edits(examples_dir: str) -> dict:
    """The images a person excluded or relabelled at ingest (empty lists when none, or older examples)."""
    path = os.path.join(examples_dir, EDITS)
    return atomic_files.read_json(path) if os.path.isfile(path) else {"excluded": [], "relabelled": []}
