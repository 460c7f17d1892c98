"""Preprocess core: the Beam pipeline from raw examples to decoded, resized examples per split.

Every image is decoded and resized with the shared `decode_and_resize`: images that do not
decode are rejected, the rest hashed for near copies. The examples hold the pixels, or with
`compact_examples` the encoded bytes (a sixth of the disk for photos), which the steps that need
pixels decode with the same function (`record_parsing.parse_processed`).

Output directory layout:
    train-*.tfrecord, eval-*.tfrecord, test-*.tfrecord   processed examples
    rejects-*.jsonl     one JSON line per record that could not be decoded, with the reason
    counts.jsonl        [split, label, count] per split and class
    shards.txt          the name of every file the pipeline wrote above, as Beam reported it
    hashes.jsonl        {split, label, digest, origin, hash, thumbnail} per processed image: its
                        perceptual hash and a 32x32 grayscale to confirm a match
    near_duplicates.jsonl  one JSON line per test image dropped as a near copy of a train or eval
                        image: {origin, label, digest, matches and matches_split (that image's
                        origin and split), distance (bits of the 128-bit hash), picture_distance}
    test-deduplicated-*.tfrecord  the test shards without those copies, when there were any
    labels.txt          the label vocabulary, carried over from ingest
    stats.json          counts per split and class (after near-duplicate removal), rejects,
                        near_duplicates_dropped, image size, and the shards of each split: readers
                        take these, never a glob, so files an earlier attempt of a retried run left
                        behind are not read
"""

import base64
import concurrent.futures
import json
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult, PipelineState

from components.common.contract.artifact_files import (
    COMPACT_EXAMPLES,
    EDITS,
    EXAMPLES_PATTERN,
    HASHES,
    INDEX,
    LABELS,
    MANIFEST,
    NEAR_DUPLICATES,
    NEAR_DUPLICATES_DROPPED,
    SOURCE,
    STATS,
)
from components.common.contract.records import SPLITS, RawExample, serialize_processed
from components.common.images import near_duplicates
from components.common.images.pixel_limit import oversize_reason
from components.common.storage import gcs
from components.preprocess import beam_files as files
from components.preprocess import runner_flags
from components.preprocess.splits import SplitError, SplitPolicy, stratify

logger = logging.getLogger(__name__)

REJECTS_PREFIX = "rejects"
COUNTS = "counts.jsonl"
SHARDS = "shards.txt"
# Images decoded per call into TensorFlow (DecodeAndResize).
DECODE_CHUNK = 16
HASH_SHARDS_PREFIX = "hashes"
DEDUPLICATED_TEST_PREFIX = "test-deduplicated"


class PreprocessError(ValueError):
    """Too little usable data remains after preprocessing."""


@dataclass(frozen=True)
class PreprocessResult:
    """What preprocess produced: counts per split and class, and how many records were rejected."""

    counts: dict[str, dict[str, int]]
    rejected: int
    image_size: int
    near_duplicates_dropped: int = 0


class DecodeAndResize(beam.DoFn):
    """Decodes batches of raw examples and resizes them; undecodable records go to the rejects output.

    Each processed image's perceptual hash goes to the hashes output, so near copies across splits
    can be found without reading the pixels again.

    A batch is decoded DECODE_CHUNK images per call into TensorFlow, on a background thread, while
    this thread hashes and serializes the chunk before: inside one call the images are decoded on
    TensorFlow's threads, every core and no GIL, where one call per image paid Python's overhead
    and the GIL for each. A chunk with an oversize or undecodable image is decoded again one image
    at a time, so that each reject gets its own reason.
    """

    REJECTS = "rejects"
    HASHES = "hashes"

    def __init__(self, image_size: int, labels: Sequence[str], policy: SplitPolicy, compact_examples: bool = False):
        self._image_size = image_size
        self._compact = compact_examples
        self._label_index = {label: index for index, label in enumerate(labels)}
        self._policy = policy
        self._decode = None
        self._decode_chunk = None
        self._decoder = None
        self._blas_limit = None

    def setup(self):
        """Once per worker: imports TensorFlow, traces the decoders and starts the decoding thread.

        numpy's BLAS is held to one thread: the hash and thumbnail are small matrix products, and
        BLAS threads of their own would compete with the decoding for the same cores, costing wall
        time and CPU (docs/performance.md, "Preprocess").
        """
        import tensorflow as tf
        import threadpoolctl

        from components.common.images.decoding import decode_and_resize
        from components.common.runtime.cpu_quota import available_cpus

        size = self._image_size
        self._errors = (tf.errors.InvalidArgumentError, tf.errors.UnknownError)
        self._decode = tf.function(lambda data: decode_and_resize(data, size),
                                   input_signature=[tf.TensorSpec([], tf.string)])
        self._decode_chunk = tf.function(
            lambda chunk: tf.map_fn(lambda data: decode_and_resize(data, size), chunk,
                                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                                    parallel_iterations=available_cpus()),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        self._decoder = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._blas_limit = threadpoolctl.threadpool_limits(1, user_api="blas")

    def teardown(self):
        """Stops the decoding thread and gives BLAS its threads back."""
        if self._decoder is not None:
            self._decoder.shutdown()
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()

    def process(self, serialized_batch: list[bytes]) -> Iterable[Any]:
        """Decodes a batch of serialized raw examples chunk by chunk; yields their outputs in order."""
        chunks = [[RawExample.parse(serialized) for serialized in serialized_batch[start:start + DECODE_CHUNK]]
                  for start in range(0, len(serialized_batch), DECODE_CHUNK)]
        decoded = [self._decoder.submit(self._chunk_pixels, examples) for examples in chunks]
        for examples, pixels in zip(chunks, decoded):
            pixels = pixels.result()
            for index, example in enumerate(examples):
                yield from self._decode_one(example) if pixels is None else self._outputs(example, pixels[index])

    def _chunk_pixels(self, examples: list[RawExample]):
        """The chunk's images, decoded in one call; None if any is oversize or undecodable."""
        if any(oversize_reason(example.image) is not None for example in examples):
            return None
        try:
            return self._decode_chunk([example.image for example in examples]).numpy()
        except self._errors:
            return None

    def _decode_one(self, example: RawExample) -> list[Any]:
        """One raw example's outputs, or its reject with the reason."""
        reason = oversize_reason(example.image)
        if reason is None:
            try:
                pixels = self._decode(example.image).numpy()
            except self._errors as error:
                message = error.message.strip().splitlines()[0] if error.message else type(error).__name__
                # TensorFlow prefixes the graph function's name: "{{function_node ...}} Input is empty."
                reason = "cannot decode image: " + message.split("}} ", 1)[-1]
        if reason is not None:
            return [beam.pvalue.TaggedOutput(
                self.REJECTS,
                {"origin": example.origin, "label": example.label, "digest": example.digest, "reason": reason},
            )]
        return self._outputs(example, pixels)

    def _outputs(self, example: RawExample, pixels) -> list[Any]:
        """A decoded image's (split, label, processed record) and its hash record."""
        split = self._policy.assign(example.digest, example.split)
        record = serialize_processed(
            None if self._compact else pixels, example.image if self._compact else None,
            example.label, self._label_index[example.label], example.origin, example.digest,
        )
        image_hash, thumbnail = near_duplicates.hash_and_thumbnail(pixels)
        return [
            (split, example.label, record),
            beam.pvalue.TaggedOutput(self.HASHES, {"split": split, "label": example.label, "digest": example.digest,
                                                   "origin": example.origin,
                                                   "hash": near_duplicates.format_hash(image_hash),
                                                   "thumbnail": base64.b64encode(thumbnail).decode("ascii")}),
        ]


class PreprocessImages(beam.PTransform):
    """Raw example records in; a dict of processed records per split, plus rejects and hashes, out."""

    def __init__(self, image_size: int, labels: Sequence[str], policy: SplitPolicy, compact_examples: bool = False):
        super().__init__()
        self._decode = DecodeAndResize(image_size, labels, policy, compact_examples)

    def expand(self, raw_records):
        """Decodes the raw records in batches, then partitions the processed ones by split."""
        decoded = (
            raw_records
            | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=64)
            | "DecodeAndResize" >> beam.ParDo(self._decode).with_outputs(
                DecodeAndResize.REJECTS, DecodeAndResize.HASHES, main="examples")
        )
        by_split = decoded.examples | "PartitionBySplit" >> beam.Partition(
            lambda element, _: SPLITS.index(element[0]), len(SPLITS)
        )
        outputs = {split: by_split[index] for index, split in enumerate(SPLITS)}
        outputs["rejects"] = decoded[DecodeAndResize.REJECTS]
        outputs["hashes"] = decoded[DecodeAndResize.HASHES]
        outputs["examples"] = decoded.examples
        return outputs


def build(pipeline: beam.Pipeline, *, raw_dir: str, output_dir: str, image_size: int,
          labels: Sequence[str], policy: SplitPolicy, compact_examples: bool = False) -> None:
    """Adds the preprocessing steps, reads and writes included, to a Beam pipeline."""
    raw = pipeline | "ReadRawExamples" >> beam.io.ReadFromTFRecord(
        files.join(raw_dir, EXAMPLES_PATTERN)
    )
    outputs = raw | "PreprocessImages" >> PreprocessImages(image_size, labels, policy, compact_examples)
    written = []
    for split in SPLITS:
        written.append(
            outputs[split]
            | f"Serialized{split.title()}" >> beam.Map(lambda element: element[2])
            | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
                files.join(output_dir, split), file_name_suffix=".tfrecord"
            )
        )
    written.append(
        outputs["rejects"]
        | "RejectsToJson" >> beam.Map(lambda reject: json.dumps(reject, sort_keys=True))
        | "WriteRejects" >> beam.io.WriteToText(
            files.join(output_dir, REJECTS_PREFIX), file_name_suffix=".jsonl"
        )
    )
    # Sharded as Beam likes: a fixed shard count would group every record in memory first.
    written.append(
        outputs["hashes"]
        | "HashesToJson" >> beam.Map(lambda record: json.dumps(record, sort_keys=True))
        | "WriteHashes" >> beam.io.WriteToText(files.join(output_dir, HASH_SHARDS_PREFIX), file_name_suffix=".jsonl")
    )
    (
        written
        | "AllWrittenFiles" >> beam.Flatten()
        | "FileNames" >> beam.Map(lambda path: path.rstrip("/").rsplit("/", 1)[-1])
        | "WriteShardList" >> beam.io.WriteToText(files.join(output_dir, SHARDS), shard_name_template="")
    )
    (
        outputs["examples"]
        | "SplitAndLabel" >> beam.Map(lambda element: (element[0], element[1]))
        | "CountPerSplitAndLabel" >> beam.combiners.Count.PerElement()
        | "CountsToJson" >> beam.Map(lambda kv: json.dumps([kv[0][0], kv[0][1], kv[1]]))
        | "WriteCounts" >> beam.io.WriteToText(
            files.join(output_dir, COUNTS), shard_name_template=""
        )
    )


def _read_counts(output_dir: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {split: {} for split in SPLITS}
    path = files.join(output_dir, COUNTS)
    for line in files.read_lines(path) if files.exists(path) else []:
        split, label, count = json.loads(line)
        counts[split][label] = count
    return counts


def _written_shards(output_dir: str) -> dict[str, list[str]]:
    """The files this run's pipeline wrote, by split, "rejects" and "hashes", as Beam reported them."""
    names = sorted(files.read_lines(files.join(output_dir, SHARDS)))
    return {kind: [name for name in names if name.startswith(f"{kind}-")]
            for kind in (*SPLITS, REJECTS_PREFIX, HASH_SHARDS_PREFIX)}


def _count_rejects(output_dir: str, reject_files: list[str]) -> int:
    return sum(len(files.read_lines(files.join(output_dir, name))) for name in reject_files)


def _gather_hashes(output_dir: str, shard_names: list[str]) -> None:
    """Concatenates the pipeline's hash shards into hashes.jsonl, streaming, and deletes them."""
    with files.open_for_writing(files.join(output_dir, HASHES)) as target:
        for name in shard_names:
            with FileSystems.open(files.join(output_dir, name)) as source:
                shutil.copyfileobj(source, target)
    if shard_names:
        FileSystems.delete([files.join(output_dir, name) for name in shard_names])


def _find_near_duplicates(output_dir: str) -> list[dict]:
    """Test images that are near copies of a train or eval image (see `near_duplicates`), with the match."""
    with FileSystems.open(files.join(output_dir, HASHES)) as lines:
        images = near_duplicates.read_hashed_images(lines)
    test = images.subset([index for index, split in enumerate(images.splits) if split == "test"])
    seen = images.subset([index for index, split in enumerate(images.splits) if split != "test"])
    copies = near_duplicates.confirmed_copies(test.hashes, test.thumbnails, seen.hashes, seen.thumbnails)
    return [
        {"origin": test.origins[query], "label": test.labels[query], "digest": test.digests[query],
         "matches": seen.origins[match], "matches_split": seen.splits[match], "distance": distance,
         "picture_distance": round(apart, 4)}
        for query, match, distance, apart in copies
    ]


def _drop_from_test_shards(output_dir: str, shard_names: list[str], digests: set[str]) -> list[str]:
    """Writes the test shards again without the records of `digests`; returns the new shards' names.

    The new shards have their own names, so a reader of the old stats.json never meets a half-
    rewritten file.
    """
    from tensorflow.core.example import example_pb2  # loaded already by the Beam step in this process

    written = []
    for name in shard_names:
        new_name = DEDUPLICATED_TEST_PREFIX + name[len("test"):]
        with FileSystems.open(files.join(output_dir, name)) as source, \
                files.open_for_writing(files.join(output_dir, new_name)) as target:
            # Beam's own TFRecord framing, so the shards read back exactly as its sink's do.
            while (record := _TFRecordUtil.read_record(source)) is not None:
                digest = example_pb2.Example.FromString(record).features.feature["digest"].bytes_list.value[0]
                if digest.decode() not in digests:
                    _TFRecordUtil.write_record(target, record)
        written.append(new_name)
    return written


def _check_usable(counts: dict[str, dict[str, int]], labels: Sequence[str]) -> None:
    train_classes = [label for label, count in counts["train"].items() if count > 0]
    if len(train_classes) < 2:
        raise PreprocessError(
            f"the train split has {len(train_classes)} class(es) with usable images "
            f"({train_classes}); at least two are needed"
        )
    missing = sorted(set(labels) - set(train_classes))
    if missing:
        raise PreprocessError(f"classes with no usable training image: {missing}")
    if not sum(counts["test"].values()):
        raise PreprocessError("the test split is empty: add test images or use more data")


def launch(*, raw_dir: str, output_dir: str, image_size: int, train_fraction: float = SplitPolicy.train_fraction,
           eval_fraction: float = SplitPolicy.eval_fraction, beam_args: Sequence[str] = (),
           compact_examples: bool = False) -> PipelineResult:
    """Builds the Beam preprocessing pipeline over ingest's output, runs it and waits for it.

    With Dataflow's `--dry_run=True` the job is translated, not submitted: the returned result's
    `job` holds what would have been sent. `run` takes the files the pipeline wrote from here.

    Args:
        raw_dir: ingest's output directory, a local path or a gs:// URI.
        output_dir: the artifact directory to fill, a local path or a gs:// URI (Beam's own IO
            writes there, so a remote runner such as Dataflow can).
        image_size: side of the square images the base network takes.
        train_fraction: share of train when the source gives no splits.
        eval_fraction: share of eval, carved from train when the source gives no eval split.
        beam_args: runner flags passed through to Beam (default: its in-process FnApiRunner, see
            `runner_flags`).
        compact_examples: write each image's encoded bytes instead of its pixels.

    Raises:
        PreprocessError: a class too small to reach every split.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    manifest = files.read_json(files.join(raw_dir, MANIFEST))
    index = (json.loads(line) for line in files.read_lines(files.join(raw_dir, INDEX)))
    try:
        policy = stratify(SplitPolicy(train_fraction, eval_fraction, tuple(manifest["explicit_splits"])), index)
    except SplitError as error:
        raise PreprocessError(str(error)) from error
    if policy.overrides:
        logger.info("preprocess: %d image(s) moved so that every class reaches every split", len(policy.overrides))
    if not gcs.is_gcs(output_dir):
        os.makedirs(output_dir, exist_ok=True)
    pipeline = beam.Pipeline(options=PipelineOptions(runner_flags.with_local_default(beam_args)))
    build(pipeline, raw_dir=raw_dir, output_dir=output_dir, image_size=image_size,
          labels=manifest["labels"], policy=policy, compact_examples=compact_examples)
    result = pipeline.run()
    result.wait_until_finish()
    if result.state != PipelineState.DONE:
        raise PreprocessError(f"the Beam pipeline ended {result.state}, not DONE")
    return result


def run(*, raw_dir: str, output_dir: str, image_size: int, train_fraction: float = SplitPolicy.train_fraction,
        eval_fraction: float = SplitPolicy.eval_fraction, beam_args: Sequence[str] = (),
        compact_examples: bool = False) -> PreprocessResult:
    """Runs the Beam preprocessing pipeline over ingest's output, then drops near copies from test.

    Args: as `launch`'s.

    Raises:
        PreprocessError: fewer than two classes, a class without training images, a class too
            small to reach every split, or no test.
    """
    launch(raw_dir=raw_dir, output_dir=output_dir, image_size=image_size, train_fraction=train_fraction,
           eval_fraction=eval_fraction, beam_args=beam_args, compact_examples=compact_examples)
    manifest = files.read_json(files.join(raw_dir, MANIFEST))
    labels = manifest["labels"]

    counts = _read_counts(output_dir)
    shards = _written_shards(output_dir)
    rejected = _count_rejects(output_dir, shards.pop(REJECTS_PREFIX)) + manifest["rejected"]
    _gather_hashes(output_dir, shards.pop(HASH_SHARDS_PREFIX))
    copies = _find_near_duplicates(output_dir)
    replaced = []
    if copies:
        replaced, shards["test"] = shards["test"], _drop_from_test_shards(
            output_dir, shards["test"], {copy["digest"] for copy in copies})
        for copy in copies:
            counts["test"][copy["label"]] -= 1
        files.write_lines(files.join(output_dir, COUNTS),
                          [json.dumps([split, label, count]) for split in SPLITS
                           for label, count in sorted(counts[split].items())])
        logger.info("preprocess: %d test image(s) dropped as near copies of train or eval images "
                    "(within %d of %d hash bits, and alike once aligned)", len(copies),
                    near_duplicates.MAX_DISTANCE, near_duplicates.HASH_BITS)
    files.write_lines(files.join(output_dir, NEAR_DUPLICATES), [json.dumps(copy, sort_keys=True) for copy in copies])
    files.write_lines(files.join(output_dir, LABELS), labels)
    # What --exclude and --relabel changed at ingest, carried to the report.
    files.write_json(files.join(output_dir, EDITS), {"excluded": manifest.get("excluded", []),
                                                     "relabelled": manifest.get("relabelled", [])})
    files.write_json(
        files.join(output_dir, STATS),
        {"counts": counts, "rejected": rejected, NEAR_DUPLICATES_DROPPED: len(copies), "image_size": image_size,
         COMPACT_EXAMPLES: compact_examples,
         "labels": labels, "shards": shards, SOURCE: manifest.get("source")},
    )
    # Only now that stats.json names the new test shards is nothing left that reads the old ones.
    if replaced:
        FileSystems.delete([files.join(output_dir, name) for name in replaced])
    logger.info(
        "preprocess: %s, %d rejected",
        ", ".join(f"{split} {sum(counts[split].values())}" for split in SPLITS), rejected,
    )
    _check_usable(counts, labels)
    return PreprocessResult(counts, rejected, image_size, len(copies))
