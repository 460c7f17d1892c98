"""The sources ingest understands, each turned into a stream of `SourceImage`.

- a class-per-folder tree `ROOT/<class>/*.jpg`, or with explicit splits `ROOT/<split>/<class>/`
  (split folders go by their common names, in any case: see `SPLIT_FOLDER_NAMES`)
- a CSV manifest with `uri,label` rows (relative URIs are relative to the manifest)
- `tfds:NAME` or `tfds:NAME/CONFIG` through tensorflow-datasets
- `demo:digits`, the offline demo
"""

import collections
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

from components.common.contract.records import SPLITS
from components.ingest.manifest import manifest_rows
from components.ingest.source_files import is_image_file

logger = logging.getLogger(__name__)

# tensorflow-datasets split names and the pipeline's.
TFDS_SPLITS = {"train": "train", "validation": "eval", "test": "test"}
# The names people give split folders, lower-cased, and the pipeline's split each stands for.
SPLIT_FOLDER_NAMES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("eval", "val", "valid", "validation", "dev"), "eval"),
    **dict.fromkeys(("test", "testing"), "test"),
}


class SourceError(ValueError):
    """The source does not exist, is empty, or is malformed."""


@dataclass(frozen=True)
class SourceImage:
    """One image of a source: how to read its bytes, its label, where it came from."""

    read: Callable[[], bytes]
    label: str
    origin: str
    split: str = ""


@dataclass(frozen=True)
class Source:
    """A parsed source: the images, which splits it gives explicitly, and the files it does not read.

    `skipped` counts files by why they are not images of the source (see `skip_reason`); it is
    complete once `images` has been read to its end.
    """

    images: Iterator[SourceImage]
    explicit_splits: tuple[str, ...]
    skipped: collections.Counter = field(default_factory=collections.Counter)


def _file_reader(path: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return read


class RefusedImage(Exception):
    """A source entry that is not read, with the reason (ingest records it as a reject)."""


def _refused(reason: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise RefusedImage(reason)

    return read


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _class_folders(root: str) -> list[str]:
    return sorted(
        name for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name)) and not name.startswith(".")
    )


def skip_reason(name: str) -> str:
    """Why a file in a class folder is not read: the summary counts skipped files by this."""
    if name.startswith("."):
        return "hidden file"
    extension = os.path.splitext(name)[1].lower()
    return f"not an image file ({extension})" if extension else "not an image file (no extension)"


OUTSIDE_CLASS_FOLDERS = "outside any class folder"


def skipped_text(skipped: dict[str, int]) -> str:
    """`3 files skipped (2 not an image file (.txt), 1 hidden file)`, or `no files skipped`."""
    counted = {reason: count for reason, count in skipped.items() if count}
    if not counted:
        return "no files skipped"
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(counted.items(), key=lambda kv: -kv[1]))
    return f"{sum(counted.values())} files skipped ({reasons})"


def _files_beside_folders(root: str) -> int:
    return sum(1 for name in os.listdir(root) if os.path.isfile(os.path.join(root, name)))


def _class_tree_files(root: str, split: str, skipped: collections.Counter) -> Iterator[tuple[str, str, str]]:
    """(path, label, split) of each image file under a class-per-folder tree, in reading order.

    A class folder may be a link (datasets often live on a mounted volume); links inside it to
    further folders are not followed, so a link loop ends. Every other file counts in `skipped`.
    """
    skipped[OUTSIDE_CLASS_FOLDERS] += _files_beside_folders(root)
    for label in _class_folders(root):
        class_dir = os.path.join(root, label)
        for directory, subdirs, files in os.walk(class_dir):
            subdirs.sort()
            for name in sorted(files):
                if is_image_file(name):
                    yield os.path.join(directory, name), label, split
                else:
                    skipped[skip_reason(name)] += 1


def _listed(folders) -> str:
    return ", ".join(f"{name}/" for name in sorted(folders))


def _split_folders(root: str, folders: list[str]) -> dict[str, str]:
    """The split folders of a tree's top level, by the pipeline's split name; empty for a class tree.

    Raises:
        SourceError: split folders beside class folders, two folders for one split, or no train split.
    """
    splits = {name: SPLIT_FOLDER_NAMES[name.lower()] for name in folders if name.lower() in SPLIT_FOLDER_NAMES}
    if not splits:
        return {}
    classes = [name for name in folders if name not in splits]
    if classes:
        raise SourceError(
            f"{root}: mixes split folders ({_listed(splits)}) with class folders ({_listed(classes)}); "
            "put every class folder under a split folder, or use no split folders")
    by_split: dict[str, str] = {}
    for name, split in splits.items():
        if split in by_split:
            raise SourceError(f"{root}: {_listed((by_split[split], name))} are both the {split} split; keep one")
        by_split[split] = name
    if "train" not in by_split:
        raise SourceError(f"{root}: has split folders ({_listed(splits)}) but no train/ (or training/) folder")
    return {split: by_split[split] for split in SPLITS if split in by_split}


def folder_files(root: str, skipped: collections.Counter | None = None
                 ) -> tuple[Iterator[tuple[str, str, str]], tuple[str, ...]]:
    """Every image file ingest reads from a folder tree, as (path, label, split), and the tree's splits.

    The splits are those the tree's split folders name, empty when it has none. The source digest
    covers exactly these files, so the two cannot disagree. The files not read are counted by
    reason in `skipped`, as the iterator goes.

    Raises:
        SourceError: see `_split_folders`.
    """
    skipped = collections.Counter() if skipped is None else skipped
    splits = _split_folders(root, _class_folders(root))
    if not splits:
        return _class_tree_files(root, "", skipped), ()

    def files() -> Iterator[tuple[str, str, str]]:
        skipped[OUTSIDE_CLASS_FOLDERS] += _files_beside_folders(root)
        for split, folder in splits.items():
            yield from _class_tree_files(os.path.join(root, folder), split, skipped)

    return files(), tuple(splits)


def folder_source(root: str) -> Source:
    """A class-per-folder tree, or one split folder per split (`train/`, `val/`, `test/`, ...) of such trees."""
    skipped: collections.Counter = collections.Counter()
    files, explicit_splits = folder_files(root, skipped)
    images = (SourceImage(_file_reader(path), label, path, split) for path, label, split in files)
    return Source(images, explicit_splits, skipped)


def csv_source(manifest: str) -> Source:
    """A CSV manifest of `uri,label` rows; a first row `uri,label` is taken as a header.

    Rows that are malformed or point outside the manifest's folder are refused when read.
    """

    def images() -> Iterator[SourceImage]:
        for row in manifest_rows(manifest):
            read = _file_reader(row.path) if row.problem is None else _refused(row.problem)
            yield SourceImage(read, row.label, row.path)

    return Source(images(), ())


def tfds_source(name: str, data_dir: str | None = None) -> Source:
    """A tensorflow-datasets data set with an image and a class label (its supervised keys)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds  # imported here: slow, and only this source needs it

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for unknown names
        raise SourceError(f"tfds:{name}: {error}") from error
    if not builder.info.supervised_keys:
        raise SourceError(f"tfds:{name} has no (image, label) supervised keys")
    image_key, label_key = builder.info.supervised_keys[:2]
    label_names = builder.info.features[label_key].names
    # A data set not prepared yet knows no splits until it is: take the usual ones then.
    splits = [s for s in (builder.info.splits or ("train", "test")) if s in TFDS_SPLITS]
    if not splits:
        raise SourceError(f"tfds:{name} has none of the splits {sorted(TFDS_SPLITS)}")
    try:
        builder.download_and_prepare()
    except Exception as error:
        raise SourceError(f"tfds:{name} could not be prepared (is it downloaded?): {error}") from error

    def images() -> Iterator[SourceImage]:
        for tfds_split in splits:
            dataset = builder.as_dataset(split=tfds_split, shuffle_files=False)
            for index, example in enumerate(tfds.as_numpy(dataset)):
                image = example[image_key]
                if image.shape[-1] == 1:
                    image = image.repeat(3, axis=-1)
                png = tf.io.encode_png(image).numpy()
                label = label_names[int(example[label_key])]
                yield SourceImage(
                    _constant(png), label, f"tfds:{name}/{tfds_split}/{index}", TFDS_SPLITS[tfds_split]
                )

    return Source(images(), tuple(sorted({TFDS_SPLITS[s] for s in splits}, key=SPLITS.index)))


def demo_source(name: str) -> Source:
    """The built-in offline demo data sets."""
    if name != "digits":
        raise SourceError(f"unknown demo 'demo:{name}'; the built-in demo is 'demo:digits'")
    from components.ingest.demo_digits import iter_target_task

    def images() -> Iterator[SourceImage]:
        for png, label, origin, split in iter_target_task():
            yield SourceImage(_constant(png), label, origin, split)

    return Source(images(), ("train", "test"))


def is_local(uri: str) -> bool:
    """Whether the source is a path on this machine, not `tfds:`, `demo:` or a gs:// URI."""
    return not uri.startswith(("tfds:", "demo:", "gs://"))


def _path_problem(path: str) -> str | None:
    if not os.path.exists(path):
        return f"source {path!r} does not exist"
    if not os.path.isdir(path) and not path.lower().endswith(".csv"):
        return f"source {path!r} is neither a folder, a .csv manifest, tfds:NAME nor demo:NAME"
    return None


def local_source_problem(uri: str) -> str | None:
    """Why a local source cannot be read, naming it; None when it can, or when it is not local.

    A gs:// source is looked at once downloaded, tfds: and demo: ones when opened.
    """
    return _path_problem(uri) if is_local(uri) else None


def open_source(uri: str) -> Source:
    """Parses a source URI into a `Source`.

    Raises:
        SourceError: the URI names nothing readable.
    """
    if uri.startswith("tfds:"):
        return tfds_source(uri[len("tfds:"):])
    if uri.startswith("demo:"):
        return demo_source(uri[len("demo:"):])
    if problem := _path_problem(uri):
        raise SourceError(problem)
    return folder_source(uri) if os.path.isdir(uri) else csv_source(uri)
