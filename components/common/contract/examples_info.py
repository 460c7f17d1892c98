"""What preprocess records beside its examples, read once: `stats.json` and the ingest edits."""

import dataclasses
import os

from components.common.contract.artifact_files import (
    COMPACT_EXAMPLES,
    EDITS,
    NEAR_DUPLICATES_DROPPED,
    SOURCE,
    STATS,
)
from components.common.storage import atomic_files


@dataclasses.dataclass(frozen=True)
class ExampleStats:
    """A preprocessed examples dir's `stats.json`: its shards, counts, image size and labels."""

    examples_dir: str
    # split -> class -> images, and the images preprocess rejected.
    counts: dict
    rejected: int
    # The side of the square images preprocess wrote.
    image_size: int
    labels: list
    # split -> the shard file names preprocess recorded writing, in order.
    shards: dict
    # Whether the examples hold encoded images, which their readers decode, rather than pixels.
    compact: bool
    # Test images dropped as near copies of train or eval images (0 if preprocess did not look).
    near_duplicates_dropped: int
    # The source the examples were ingested from, as the run gave it (None for older examples).
    source: str | None

    def split_files(self, split: str) -> list[str]:
        """The processed-example shards of one split: those preprocess recorded writing, in order.

        Not a glob: a retried run can leave an earlier attempt's shards in the same directory.
        """
        return [os.path.join(self.examples_dir, name) for name in self.shards[split]]


def read_stats(examples_dir: str) -> ExampleStats:
    """The stats preprocess wrote beside its examples in `examples_dir`."""
    stats = atomic_files.read_json(os.path.join(examples_dir, STATS))
    return ExampleStats(
        examples_dir=examples_dir, counts=stats["counts"], rejected=stats.get("rejected", 0),
        image_size=stats["image_size"], labels=stats["labels"], shards=stats["shards"],
        compact=bool(stats.get(COMPACT_EXAMPLES, False)),
        near_duplicates_dropped=stats.get(NEAR_DUPLICATES_DROPPED, 0), source=stats.get(SOURCE),
    )


def edits(examples_dir: str) -> dict:
    """The images a person excluded or relabelled at ingest (empty lists when none, or older examples)."""
    path = os.path.join(examples_dir, EDITS)
    return atomic_files.read_json(path) if os.path.isfile(path) else {"excluded": [], "relabelled": []}
