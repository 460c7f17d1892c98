"""Ingest core: stream a source into sharded TFRecords of raw examples.

Output directory layout:
    examples-00000.tfrecord ...  RawExample records (encoded image, label, origin, digest, split)
    labels.txt                   the label vocabulary, sorted; a label's index is its line number
    rejects.jsonl                files that could not be read, with the reason
    index.jsonl                  [digest, label, split] per image kept, for preprocess's split plan
    manifest.json                counts, explicit splits, the source
"""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from components.common.contract.artifact_files import INDEX, LABELS, MANIFEST, REJECTS
from components.common.contract.audit_csv import ImageChoices
from components.common.contract.example_wire import TFRecordFileWriter
from components.common.contract.records import RawExample
from components.common.storage import atomic_files, gcs
from components.ingest.label_check import label_problem
from components.ingest.seen_digests import SeenDigests
from components.ingest.sources import RefusedImage, SourceError, open_source, skipped_text

logger = logging.getLogger(__name__)

RECORDS_PER_SHARD = 1000


@dataclass(frozen=True)
class IngestResult:
    """What ingest produced."""

    count: int
    labels: tuple[str, ...]
    duplicates: int
    rejected: int
    explicit_splits: tuple[str, ...]
    skipped: dict[str, int]  # files in the source that are not images of it, by reason
    excluded: int = 0  # images left out as --exclude asked
    relabelled: int = 0  # images given another label as --relabel asked


class _ShardWriter:
    """Writes records into numbered shards, each renamed into place once complete."""

    def __init__(self, output_dir: str, records_per_shard: int):
        self._output_dir = output_dir
        self._records_per_shard = records_per_shard
        self._shard = 0
        self._in_shard = 0
        self._writer: TFRecordFileWriter | None = None
        self._tmp_path = ""

    def _final_path(self) -> str:
        return os.path.join(self._output_dir, f"examples-{self._shard:05d}.tfrecord")

    def write(self, record: bytes) -> None:
        if self._writer is None:
            self._tmp_path = os.path.join(self._output_dir, f".tmp-examples-{self._shard:05d}")
            self._writer = TFRecordFileWriter(self._tmp_path)
        self._writer.write(record)
        self._in_shard += 1
        if self._in_shard == self._records_per_shard:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp_path, self._final_path())
            self._writer = None
            self._shard += 1
            self._in_shard = 0


def run(*, source: str, output_dir: str, records_per_shard: int = RECORDS_PER_SHARD,
        exclude: ImageChoices | None = None, relabel: ImageChoices | None = None) -> IngestResult:
    """Reads every image of `source` into `output_dir`, deduplicating by content digest.

    Args:
        source: a folder tree or CSV manifest (local or gs://), `tfds:NAME` or `demo:digits`.
        output_dir: the artifact directory to fill; created if missing.
        records_per_shard: records per TFRecord shard.
        exclude: images a person chose to leave out (an edited audit CSV, `audit_csv`).
        relabel: images a person gave another label, each with it.

    Raises:
        SourceError: the source does not exist or holds no image.
        RemoteStorageError: a gs:// source could not be read, even after retries.
    """
    if not gcs.is_gcs(source):
        return _ingest(source, source, output_dir, records_per_shard, _Choices(exclude, relabel))
    # Beam and TensorFlow read local files here: bring the objects over once, keep gs:// origins.
    remote_dir = source.rsplit("/", 1)[0] if source.lower().endswith(".csv") else source
    with tempfile.TemporaryDirectory(prefix="headstart-ingest-") as local_dir:
        logger.info("ingest: downloading %s", remote_dir)
        count = gcs.download_tree(remote_dir, local_dir)
        logger.info("ingest: %d objects downloaded", count)
        local_source = os.path.join(local_dir, source[len(remote_dir):].lstrip("/"))
        return _ingest(source, local_source, output_dir, records_per_shard, _Choices(exclude, relabel),
                       origin=lambda path: gcs.join(remote_dir, os.path.relpath(path, local_dir)))


@dataclass
class _Choices:
    """A person's edits applied as the images are read, and what they changed."""

    exclude: ImageChoices | None
    relabel: ImageChoices | None
    excluded: list[dict] = field(default_factory=list)
    relabelled: list[dict] = field(default_factory=list)
    # Digests of the images each file's rows found, a relabel to the label they had included.
    found: dict[str, set[str]] = field(default_factory=lambda: {"exclude": set(), "relabel": set()})

    def label_of(self, digest: str, origin: str, label: str) -> str | None:
        """The image's label after the edits: None to leave it out."""
        if self.exclude and self.exclude.find(digest, origin) is not None:
            self.found["exclude"].add(digest)
            self.excluded.append({"origin": origin, "digest": digest, "label": label})
            return None
        new = self.relabel.find(digest, origin) if self.relabel else None
        if new is not None:
            self.found["relabel"].add(digest)
        if new is None or new == label:
            return label
        self.relabelled.append({"origin": origin, "digest": digest, "label": label, "relabelled": new})
        return new

    def log(self, source: str) -> None:
        """Says what the edits did, and which of their rows found no image."""
        for name, count in self.unmatched().items():
            logger.warning("ingest: %d rows of the --%s file name no image of %s (moved or changed since the "
                           "audit?)", count, name, source)
        if self.exclude or self.relabel:
            logger.info("ingest: %d images excluded and %d relabelled as asked", len(self.excluded),
                        len(self.relabelled))

    def unmatched(self) -> dict[str, int]:
        """Rows of each file that named no image of the source (a moved or edited file, a typo)."""
        return {name: len(choices) - len(self.found[name]) for name, choices in (("exclude", self.exclude),
                                                                                   ("relabel", self.relabel))
                if choices and len(choices) > len(self.found[name])}


def _read_or_reject(image, image_origin: str, rejects: list[str]) -> bytes | None:
    """The image's bytes; None, with its reject recorded, when it cannot be read."""
    try:
        return image.read()
    except OSError as error:
        rejects.append(json.dumps({"origin": image_origin, "reason": f"unreadable: {error.strerror or error}"}))
    except RefusedImage as refused:
        rejects.append(json.dumps({"origin": image_origin, "reason": str(refused)}))
    return None


def _label_or_reject(choices: _Choices, digest: str, image_origin: str, label: str, rejects: list[str]) -> str | None:
    """The image's label after a person's edits; None when it is excluded, or rejected for its label."""
    label = choices.label_of(digest, image_origin, label)
    problem = label_problem(label) if label is not None else None
    if problem:
        rejects.append(json.dumps({"origin": image_origin, "reason": problem}))
        return None
    return label


def _ingest(source: str, local_source: str, output_dir: str, records_per_shard: int, choices: _Choices,
            origin=lambda path: path) -> IngestResult:
    os.makedirs(output_dir, exist_ok=True)
    parsed = open_source(local_source)
    writer = _ShardWriter(output_dir, records_per_shard)
    labels: set[str] = set()
    rejects: list[str] = []
    count = duplicates = 0
    # The index goes to disk as it grows and the digests kept live in SQLite: memory stays flat.
    with tempfile.TemporaryDirectory(prefix="headstart-ingest-") as scratch, \
            contextlib.closing(SeenDigests(os.path.join(scratch, "kept.sqlite"))) as kept, \
            atomic_files.atomic_path(os.path.join(output_dir, INDEX)) as index_path, \
            open(index_path, "w", encoding="utf-8") as index:
        for image in parsed.images:
            image_origin = origin(image.origin)
            data = _read_or_reject(image, image_origin, rejects)
            if data is None:
                continue
            digest = hashlib.sha256(data).hexdigest()
            label = _label_or_reject(choices, digest, image_origin, image.label, rejects)
            if label is None:
                continue
            first = kept.first(digest)
            if first is not None:
                kept_label, kept_origin = first
                if kept_label == label:
                    duplicates += 1
                else:  # the same picture cannot be both: keep the first, say so for the second
                    rejects.append(json.dumps({
                        "origin": image_origin,
                        "reason": f"conflicting labels: the same image is {kept_origin} labelled {kept_label!r}; "
                                  f"kept that one, not this one labelled {label!r}"}))
                continue
            kept.add(digest, label, image_origin)
            labels.add(label)
            writer.write(RawExample(data, label, image_origin, digest, image.split).serialize())
            index.write(json.dumps([digest, label, image.split]) + "\n")
            count += 1
            if count % 500 == 0:
                logger.info("ingest: %d images read", count)
        writer.close()
        if count == 0:  # raised inside the block: no index of nothing is left behind
            first = f"; the first: {json.loads(rejects[0])}" if rejects else ""
            raise SourceError(f"source {source!r} holds no image files ingest could read "
                              f"({len(rejects)} rejected{first})")
        if len(labels) < 2:  # raised inside the block too: nothing a later step could use is left
            raise SourceError(f"source {source!r} holds images of one class only ({sorted(labels)[0]!r}, "
                              f"{count} images); a classifier needs at least two: one folder (or label) per class")
    sorted_labels = sorted(labels)
    skipped = {reason: count for reason, count in sorted(parsed.skipped.items()) if count}
    atomic_files.write_lines(os.path.join(output_dir, LABELS), sorted_labels)
    atomic_files.write_lines(os.path.join(output_dir, REJECTS), rejects)
    atomic_files.write_json(
        os.path.join(output_dir, MANIFEST),
        {
            "source": source,
            "count": count,
            "labels": sorted_labels,
            "duplicates": duplicates,
            "rejected": len(rejects),
            "explicit_splits": list(parsed.explicit_splits),
            "skipped": skipped,
            # A person's edits, each image with its label before (and after): the report lists them.
            "excluded": choices.excluded,
            "relabelled": choices.relabelled,
        },
    )
    choices.log(source)
    logger.info(
        "ingest: %d images, %d classes, %d duplicates dropped, %d rejected, %s",
        count, len(sorted_labels), duplicates, len(rejects), skipped_text(skipped),
    )
    return IngestResult(count, tuple(sorted_labels), duplicates, len(rejects), parsed.explicit_splits, skipped,
                        len(choices.excluded), len(choices.relabelled))
