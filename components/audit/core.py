"""The data audit, on the extracted features: likely mislabelled images, near duplicates, outliers, balance.

It runs in seconds because the base network already ran: everything here is on the feature vectors
(and, for duplicates, the perceptual hashes preprocess kept).

- Likely mislabelled: out-of-fold predictions of a logistic regression on the features (projected
  on their leading principal components when there are many), so no image is scored by a model
  that saw its label. In the manner of confident learning, an image is
  flagged when the probability of its given label is below that class's average self-confidence
  and another class is the most probable; the list is ranked by the given label's probability,
  lowest first.
- Near duplicates: pairs within 16 bits of a 128-bit difference hash that also look alike once
  aligned (`near_duplicates`), inside a split and across splits.
- Outliers: cosine distance to the nearest class centroid of the L2-normalized features, ranked
  by how many median absolute deviations above that class's median it lies.
- Balance: images per split and class, and the largest to smallest training class ratio.

Output (the audit artifact): audit.json, {"mislabeled", "near_duplicates", "outliers": [entries],
"balance": {...}, "images": n}. Each entry names its origin (file or URI), split, label, digest,
score and a small PNG thumbnail (base64) for the report.
"""

import base64
import io
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import tensorflow as tf
from PIL import Image

from components.common.contract import audit_csv, examples_info
from components.common.contract.artifact_files import (
    AUDIT_ISSUES,
    AUDIT_REPORT,
    FEATURE_DIGESTS_SUFFIX,
    FEATURES_INFO,
    HASHES,
    LABELS,
)
from components.common.contract.record_parsing import PROCESSED_FEATURES, parse_feature_batch, parse_processed
from components.common.contract.records import SPLITS
from components.common.images import near_duplicates
from components.common.storage import atomic_files

logger = logging.getLogger(__name__)

FOLDS = 5
# The audit's CSV lists every image at least this many median absolute deviations beyond its
# nearest class's median distance: about 3.5 standard deviations of a normal spread (3.5 x 1.4826),
# the usual bar for a robust outlier.
OUTLIER_MADS = 5.2
# More dimensions than this are projected on their leading principal components first: the
# logistic regression then takes seconds at 50,000 flattened 12,544-float vectors too.
MAX_DIMENSIONS = 256
# Vectors the projection is fitted on, evenly spread over the images: at most this many, and at
# most PROJECTION_SAMPLE_BYTES of them (flattened vectors of a large base are long), whatever the
# number of images.
PROJECTION_SAMPLE = 2048
PROJECTION_SAMPLE_BYTES = 256 * 1024 * 1024
# Features up to this size are kept after the first pass rather than read again for the second.
KEEP_READ_BYTES = 256 * 1024 * 1024
# Each fold's regression is fitted on at most this many of its images, spread over the classes:
# its standardized float64 copies then take the same memory at 50,000 images as at 10,000, and
# 8,192 images fit a regression on 256 features as well as 40,000 do.
FOLD_FIT_SAMPLE = 8192
# Every class keeps at least this many of its images in a fold's sample (all of them if fewer), so
# that a rare class is not left out of the regression and every one of its images flagged.
FOLD_FIT_CLASS_MINIMUM = 64
# Held-out images scored at a time: probabilities of a whole fold at once copy it in float64 too.
PREDICT_BATCH = 4096
THUMBNAIL = 64
READ_BATCH = 1024  # feature vectors per batch
# Processed records read at a time while looking for the ones to show.
THUMBNAIL_SCAN_BATCH = 256


@dataclass(frozen=True)
class Images:
    """Every image the features hold: its vector (projected when long), label, split, digest, origin.

    `centroid_distances` are each image's cosine distances to the class centroids of the
    L2-normalized features, in the full feature space.
    """

    vectors: np.ndarray
    labels: np.ndarray
    splits: list[str]
    digests: list[str]
    origins: list[str]
    centroid_distances: np.ndarray
    dimensions: int  # of the features themselves: more than `vectors` has when they were projected


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class _Features:
    """The features artifact, one vector per image, in batches, as often as needed.

    Up to KEEP_READ_BYTES of them are kept after the first reading, so a second pass costs no
    reading (flattened vectors of several views are large); more are read again, so that memory
    does not grow with the images.
    """

    def __init__(self, features_dir: str):
        self._dir = features_dir
        info = atomic_files.read_json(os.path.join(features_dir, FEATURES_INFO))
        self.dim = info["dim"]
        # Train holds each image's augmented views one after another, its own vector first: the
        # audit is about images, so it takes that one.
        self._per_image = {"train": len(info.get("train_views", ["identity"]))}
        self.digests, self.splits = [], []
        for split in SPLITS:
            names = atomic_files.read_lines(os.path.join(features_dir, f"{split}{FEATURE_DIGESTS_SUFFIX}"))
            self.digests += names[::self._per_image.get(split, 1)]
            self.splits += [split] * len(names[::self._per_image.get(split, 1)])
        self._read: list | None = [] if 4 * self.dim * len(self.digests) <= KEEP_READ_BYTES else None
        self._all_read = False

    def keep_nothing(self) -> None:
        """Read the features again on every pass: for a caller that keeps the vectors itself."""
        self._read, self._all_read = None, False

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(vectors, label indices) batches over every split, in the digests' order."""
        if self._all_read:
            yield from self._read
            return
        if self._read is not None:
            self._read = []  # a pass given up halfway leaves nothing behind
        for split in SPLITS:
            records = tf.data.TFRecordDataset(os.path.join(self._dir, f"{split}.tfrecord"))
            batches = records.shard(self._per_image.get(split, 1), 0).batch(READ_BATCH)
            for vectors, labels in batches.map(lambda batch: parse_feature_batch(batch, self.dim)):
                batch = vectors.numpy(), labels.numpy().astype(int)
                if self._read is not None:
                    self._read.append(batch)
                yield batch
        self._all_read = self._read is not None


def _read_features(features_dir: str, origin_of: dict[tuple[str, str], str], classes: int, seed: int = 0) -> Images:
    """Two passes over the features: beyond KEEP_READ_BYTES, memory holds MAX_DIMENSIONS floats per image and a sample.

    The first sums each class's normalized vectors (the centroids) and, when the vectors are long,
    keeps an even sample of up to PROJECTION_SAMPLE of them to fit the projection on; the second
    projects every vector and measures its distance to each centroid. Vectors short enough to be
    used as they are fill one array in the first pass, which the second pass reads. `origin_of`
    gives each image's origin by (digest, label name); an image it lacks is named by its digest.
    """
    features = _Features(features_dir)
    project = features.dim > MAX_DIMENSIONS and len(features.digests) > 1
    # Kept once, here: the features' own copy of the first pass as well would double them.
    whole = None if project else np.empty((len(features.digests), features.dim), np.float32)
    if whole is not None:
        features.keep_nothing()
    # The same number of sampled vectors at 5,000 images as at 50,000, spread evenly over them.
    size = max(2, min(PROJECTION_SAMPLE, PROJECTION_SAMPLE_BYTES // (4 * features.dim)))
    chosen = np.unique(np.linspace(0, len(features.digests) - 1, size).astype(int)) if project \
        else np.array([], dtype=int)
    sample = np.empty((len(chosen), features.dim), np.float32)
    sums, labels, seen = np.zeros((classes, features.dim)), [], 0
    for vectors, batch_labels in features.batches():
        sums += _one_hot(batch_labels, classes).T @ _unit(vectors)  # one product: np.add.at is far slower
        rows = chosen[(chosen >= seen) & (chosen < seen + len(vectors))]
        sample[np.searchsorted(chosen, rows)] = vectors[rows - seen]
        labels.append(batch_labels)
        if whole is not None:
            whole[seen:seen + len(vectors)] = vectors
        seen += len(vectors)
    centroids = _unit(sums).astype(np.float32)
    projection = None
    if project:
        from sklearn.decomposition import PCA

        # Fitted on a sample: the whole of many long vectors would not fit in memory.
        # The projection never sees a label, so fitting it on held-out images too tells the
        # classifier nothing about their labels.
        # As many components as the sample allows: fewer than MAX_DIMENSIONS where vectors are
        # very long. One power iteration rather than sklearn's seven, on PROJECTION_SAMPLE
        # vectors: flipped labels ranked as well as with a larger sample and more iterations, in
        # a fraction of the time (docs/performance.md, "The audit"). An audit's ranking
        # needs the leading components, not exact ones.
        projection = PCA(min(MAX_DIMENSIONS, len(sample)), svd_solver="randomized", iterated_power=1,
                         random_state=seed).fit(sample)
    del sample
    kept, distances = [], []
    second_pass = features.batches() if project else (
        (whole[start:start + READ_BATCH], None) for start in range(0, len(whole), READ_BATCH))
    for vectors, _ in second_pass:
        if project:
            kept.append(projection.transform(vectors).astype(np.float32))
        distances.append(1 - _unit(vectors) @ centroids.T)
    label_array = np.concatenate(labels)
    names = atomic_files.read_lines(os.path.join(features_dir, LABELS))
    origins = [origin_of.get((digest, names[label]), digest) for digest, label in zip(features.digests, label_array)]
    return Images(np.concatenate(kept) if project else whole, label_array, features.splits, features.digests, origins,
                  np.concatenate(distances), features.dim)


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """(len(labels), classes), one 1 per row: the batch's size, not a classes x classes identity."""
    rows = np.zeros((len(labels), classes), np.float32)
    rows[np.arange(len(labels)), labels] = 1
    return rows


def out_of_fold_probabilities(vectors: np.ndarray, labels: np.ndarray, classes: int, seed: int = 0,
                              standardize: bool = True) -> np.ndarray:
    """Each image's class probabilities from a logistic regression fitted on the other folds.

    Features are standardized one by one; principal components (`standardize` False) are only
    scaled all alike: brought to unit variance one by one, the hundreds of noise components would
    weigh as much as the few that separate the classes. Each fold's regression is fitted on at
    most about FOLD_FIT_SAMPLE of its images and scores the held-out ones PREDICT_BATCH at a time,
    so that its memory does not grow with the images.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = min(FOLDS, int(np.bincount(labels, minlength=classes).min()))
    probabilities = np.zeros((len(labels), classes))
    if folds < 2:
        probabilities[np.arange(len(labels)), labels] = 1  # too few images in a class to hold any out
        return probabilities
    divisor = 1.0 if standardize else max(float(vectors.std()), 1e-12)
    rng = np.random.default_rng(seed)
    for fit, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels):
        fit = fold_fit_sample(fit, labels, rng)
        model = make_pipeline(StandardScaler(with_std=standardize), LogisticRegression(C=0.1, max_iter=500))
        model.fit(vectors[fit] / divisor, labels[fit])
        for start in range(0, len(held_out), PREDICT_BATCH):
            rows = held_out[start:start + PREDICT_BATCH]
            probabilities[np.ix_(rows, model.classes_)] = model.predict_proba(vectors[rows] / divisor)
    return probabilities


def fold_fit_sample(fit: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """At most about FOLD_FIT_SAMPLE of a fold's images, each class in proportion but at least FOLD_FIT_CLASS_MINIMUM.

    A fold of at most FOLD_FIT_SAMPLE images is returned whole.
    """
    if len(fit) <= FOLD_FIT_SAMPLE:
        return fit
    chosen = []
    for label in np.unique(labels[fit]):
        members = fit[labels[fit] == label]
        share = max(FOLD_FIT_CLASS_MINIMUM, round(FOLD_FIT_SAMPLE * len(members) / len(fit)))
        chosen.append(members if len(members) <= share else rng.choice(members, share, replace=False))
    return np.sort(np.concatenate(chosen))


def label_issues(probabilities: np.ndarray, labels: np.ndarray) -> list[tuple[int, float, int, bool]]:
    """(image, probability of its given label, most likely other class, flagged) per image, most suspicious first.

    Flagged are cleanlab's label issues on the out-of-fold probabilities (confident learning:
    the per-class thresholds give a confident joint of given and likely labels, and the images
    it counts as off the diagonal are pruned, `prune_by_noise_rate`), ranked by the given
    label's probability, lowest first. The other images follow, ranked the same way.
    """
    from cleanlab.filter import find_label_issues

    self_confidence = probabilities[np.arange(len(labels)), labels]
    others = probabilities.copy()
    others[np.arange(len(labels)), labels] = -1
    suggested = others.argmax(axis=1)
    found = np.array([], dtype=int)
    if len(np.unique(labels)) > 1:
        with warnings.catch_warnings():
            # cleanlab warns about classes with few images; the audit still ranks them.
            warnings.simplefilter("ignore")
            found = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    flagged = np.zeros(len(labels), dtype=bool)
    flagged[found] = True
    rest = [i for i in np.argsort(self_confidence, kind="stable") if not flagged[i]]
    return [(int(i), float(self_confidence[i]), int(suggested[i]), bool(flagged[i])) for i in [*found, *rest]]


def outlier_scores(centroid_distances: np.ndarray) -> np.ndarray:
    """How far each image lies from every class: MADs above its nearest class's median distance.

    `centroid_distances` are (images, classes) cosine distances to the class centroids.
    """
    nearest = centroid_distances.argmin(axis=1)
    distance = centroid_distances[np.arange(len(centroid_distances)), nearest]
    scores = np.zeros(len(centroid_distances))
    for c in range(centroid_distances.shape[1]):
        members = nearest == c
        if members.any():
            median = np.median(distance[members])
            spread = np.median(np.abs(distance[members] - median)) or 1e-12
            scores[members] = (distance[members] - median) / spread
    return scores


def near_duplicate_pairs(images: near_duplicates.HashedImages, top: int) -> tuple[list[dict], list[dict]]:
    """The pairs of processed images that are near copies, inside a split or across splits, closest first.

    `images` are preprocess's per-image hash records (hashes.jsonl). Returns the `top` closest as
    the report's records, and every pair as a row of the audit's CSV (`audit_csv`). In a set made
    of a few photos' variants nearly every image has a copy: a pair is held as four numbers until
    it becomes a row.
    """
    best: dict[tuple[int, int], tuple[int, float, int]] = {}  # pair -> (hash distance, apart, order found)
    for order, (first, second, distance, apart) in enumerate(near_duplicates.confirmed_copies(
            images.hashes, images.thumbnails, images.hashes, images.thumbnails, same_set=True)):
        best.setdefault((min(first, second), max(first, second)), (distance, apart, order))
    ranked = sorted(best.items(), key=lambda item: item[1])
    found_pairs, rows = [], []
    for rank, ((first, second), (distance, apart, _)) in enumerate(ranked, start=1):
        image, other = images.record(first), images.record(second)
        rows.append({"kind": audit_csv.NEAR_DUPLICATE, "rank": rank, **image, "score": distance,
                     "matches": other["origin"]})
        if rank <= top:
            found_pairs.append({**image, "matches": other["origin"], "matches_split": other["split"],
                                "matches_label": other["label"], "matches_digest": other["digest"],
                                "hash_distance": distance, "score": round(apart, 4)})
    return found_pairs, rows


def _thumbnails(examples_dir: str, digests: set[str]) -> dict[str, str]:
    """Small PNG thumbnails (base64) of the processed images with these digests, for the report."""
    stats = examples_info.read_stats(examples_dir)
    image_size = stats.image_size
    found = {}
    files = [path for split in SPLITS for path in stats.split_files(split)]
    # Digests are parsed a batch at a time; pixels only for the few records wanted.
    for batch in tf.data.TFRecordDataset(files).batch(THUMBNAIL_SCAN_BATCH):
        batch_digests = tf.io.parse_example(batch, {"digest": PROCESSED_FEATURES["digest"]})["digest"].numpy()
        for index, digest in enumerate(value.decode() for value in batch_digests):
            if digest in digests and digest not in found:
                found[digest] = _png_thumbnail(parse_processed(batch[index], image_size)["pixels"].numpy())
        if len(found) == len(digests):
            break
    return found


def _png_thumbnail(pixels) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _balance(images: Images, labels: list[str]) -> dict:
    counts = {split: {label: 0 for label in labels} for split in SPLITS}
    for split, label in zip(images.splits, images.labels):
        counts[split][labels[label]] += 1
    train = [count for count in counts["train"].values() if count]
    return {"counts": counts, "train_largest_to_smallest": round(max(train) / min(train), 3) if train else None}


def run(*, features_dir: str, examples_dir: str, output_dir: str, top: int = 20) -> dict:
    """Audits the data behind the features; writes and returns audit.json's content.

    Args:
        features_dir: extract-features' output (vectors and their digests per split).
        examples_dir: preprocess's output (origins, hashes and pixels of the processed images).
        output_dir: the audit artifact's directory.
        top: entries kept in each list.
    """
    # Preprocess's per-image records: origins for every list, hashes for the duplicates. The
    # search comes first, so that the hashes' thumbnails are gone before the vectors are read.
    with open(os.path.join(examples_dir, HASHES), "rb") as lines:
        hashes = near_duplicates.read_hashed_images(lines)
    duplicates, duplicate_rows = near_duplicate_pairs(hashes, top)
    origin_of = dict(zip(zip(hashes.digests, hashes.labels), hashes.origins))
    del hashes
    labels = atomic_files.read_lines(os.path.join(features_dir, LABELS))
    images = _read_features(features_dir, origin_of, len(labels))

    def entry(index: int, score: float, **more) -> dict:
        return {"origin": images.origins[index], "split": images.splits[index],
                "label": labels[images.labels[index]], "digest": images.digests[index], "score": round(score, 4),
                **more}

    probabilities = out_of_fold_probabilities(images.vectors, images.labels, len(labels),
                                              standardize=images.vectors.shape[1] == images.dimensions)
    issues = label_issues(probabilities, images.labels)
    mislabeled = [entry(index, 1 - confidence, suggested=labels[suggested], flagged=flagged)
                  for index, confidence, suggested, flagged in issues[:top]]
    scores = outlier_scores(images.centroid_distances)
    by_score = np.argsort(-scores, kind="stable")
    outliers = [entry(int(index), float(scores[index])) for index in by_score[:top]]
    issue_rows = [{"kind": audit_csv.LABEL_ISSUE, "rank": rank, **entry(index, 1 - confidence),
                   "suggested": labels[suggested]}
                  for rank, (index, confidence, suggested, flagged) in enumerate(issues, start=1) if flagged]
    outlier_rows = [{"kind": audit_csv.OUTLIER, "rank": rank, **entry(int(index), float(scores[index]))}
                    for rank, index in enumerate(by_score[:np.count_nonzero(scores >= OUTLIER_MADS)], start=1)]
    os.makedirs(output_dir, exist_ok=True)
    listed_in_file = audit_csv.write_issues(os.path.join(output_dir, AUDIT_ISSUES),
                                            [*issue_rows, *outlier_rows, *duplicate_rows])
    listed = {item["digest"] for item in mislabeled + outliers + duplicates}
    listed |= {item["matches_digest"] for item in duplicates}
    thumbnails = _thumbnails(examples_dir, listed)
    for item in mislabeled + outliers + duplicates:
        item["thumbnail"] = thumbnails.get(item["digest"])
        if "matches_digest" in item:
            item["matches_thumbnail"] = thumbnails.get(item["matches_digest"])
    audit = {"images": len(images.labels), "mislabeled": mislabeled, "near_duplicates": duplicates,
             "outliers": outliers, "balance": _balance(images, labels),
             "flagged_mislabeled": sum(flagged for *_, flagged in issues),
             # The whole ranked lists: every label issue, every outlier past OUTLIER_MADS, every pair.
             "issues_file": {"name": AUDIT_ISSUES, "label_issues": len(issue_rows), "outliers": len(outlier_rows),
                             "near_duplicates": len(duplicate_rows), "rows": listed_in_file}}
    atomic_files.write_json(os.path.join(output_dir, AUDIT_REPORT), audit)
    train = audit["balance"]["counts"]["train"]
    # The smallest and the largest class, not every class: a line per run, even at 1,000 classes.
    smallest, largest = min(train, key=train.get), max(train, key=train.get)
    logger.info("audit: %d images; %d flagged as likely mislabelled, %d near-duplicate pairs; %d train classes, "
                "from %d images (%s) to %d (%s)", audit["images"], audit["flagged_mislabeled"], len(duplicates),
                len(train), train[smallest], smallest, train[largest], largest)
    return audit
