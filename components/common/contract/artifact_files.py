"""The artifact contract: every file name that one step writes and another step reads.

A step never imports another step; whatever crosses a step boundary is declared here, once (as
TFX declares its key names in `standard_component_specs`). The record formats inside these files
live beside this module: `records` (what each TFRecord holds), `record_parsing` and `example_wire`.
This module imports nothing, so the summary and the cache can read a run's artifacts without
importing TensorFlow.
"""

# Raw examples (ingest): RawExample records in numbered shards, the label vocabulary (a label's
# index is its line number), the files that could not be read, counts and explicit splits, and one
# JSON line [digest, label, explicit split] per example so that preprocess can stratify the splits
# without reading the images twice.
EXAMPLES_PATTERN = "examples-*.tfrecord"
LABELS = "labels.txt"
REJECTS = "rejects.jsonl"
MANIFEST = "manifest.json"
INDEX = "index.jsonl"

# Examples (preprocess): the split shards and `stats.json` beside them (counts per split and class,
# rejects, image size, labels, the shards of each split, and the keys below), the perceptual hash of
# every image, the test images dropped as near copies of train or eval images (one JSON line each),
# and the images --exclude and --relabel changed at ingest ({"excluded": [...], "relabelled": [...]}).
STATS = "stats.json"
HASHES = "hashes.jsonl"
NEAR_DUPLICATES = "near_duplicates.jsonl"
EDITS = "edits.json"
# stats.json's keys for the count of near copies dropped, whether the examples hold encoded images
# rather than pixels, and the source the examples came from, as the run gave it.
NEAR_DUPLICATES_DROPPED = "near_duplicates_dropped"
COMPACT_EXAMPLES = "compact_examples"
SOURCE = "source"

# Features (extract-features): per-split feature records, and what produced them.
FEATURES_INFO = "features.json"
# Beside each split's feature records, `<split>.digests.txt`: each record's image digest, in order.
FEATURE_DIGESTS_SUFFIX = ".digests.txt"

# Base network (extract-features, fine-tune): the saved feature extractor, and beside it a record
# of its spec, feature size and parameter count for people and the model card (never read back
# for trust: whoever can write the file could claim anything in it).
BASE_MODEL_FILE = "base.keras"
BASE_NETWORK_INFO = "base_network.json"

# Head (train-head, fine-tune): the trained head and its training history.
HEAD_MODEL_FILE = "head.keras"
HISTORY = "history.json"
FINE_TUNE_INFO = "fine_tune.json"

# Lift (transfer-lift): the random-weight baseline's test accuracy.
LIFT = "lift.json"

# Evaluation (evaluate): metrics, the blessing decision and the test predictions push checks.
METRICS = "metrics.json"
BLESSING = "blessing.json"
PREDICTIONS = "test_predictions.npz"

# Audit (audit): likely mislabelled images, near duplicates, outliers and class balance.
AUDIT_REPORT = "audit.json"
# Every label issue, outlier and near-duplicate pair, ranked: the file --exclude and --relabel take.
AUDIT_ISSUES = "audit_issues.csv"

# Push result (push): whether and where the model went.
PUSH_RESULT = "push.json"
# ... and, when edge export ran, each TFLite model's size and parity check (also in the version).
EDGE_REPORT = "edge.json"

# Beside every step's first output: what its process used (peak memory, bytes written, seconds),
# which the run summary reads and the step cache leaves out of the output's content.
RESOURCES_FILE = ".headstart-resources.json"

# What each artifact passed between steps holds, by the name every component gives it: the text
# KFP shows beside a component's inputs and outputs (see `knobs.documented`).
ARTIFACTS = {
    "raw_examples": "ingest's raw examples: the source's images as records, the label vocabulary, the rejects "
                    "and an index of digests, labels and explicit splits",
    "examples": "preprocess's examples: decoded, resized images (or, compact, the images still encoded) in train, "
                "eval and test shards, with their statistics, rejects and perceptual hashes",
    "features": "every image's feature vector from the frozen base network, per split, with the labels",
    "base_network": "the saved frozen base network (feature extractor) and a record of its spec",
    "head": "the trained MLP head and its training history",
    "tuned_base_network": "the base network after fine-tuning, or the frozen one unchanged when fine-tuning "
                          "was skipped or scored lower on eval",
    "tuned_head": "the head after fine-tuning, or phase one's unchanged, with fine_tune.json saying which",
    "lift": "the random-weight baseline's test accuracy, when transfer lift was measured",
    "evaluation": "the test metrics, the blessing decision with its reasons, and the test predictions",
    "metrics": "the test metrics as KFP scalar metrics",
    "classification_metrics": "the test confusion matrix and, for two classes, the ROC curve",
    "report": "the HTML evaluation report",
    "audit": "the data audit: likely mislabelled images, near duplicates, outliers and class balance",
    "push_result": "whether the model was pushed, where and why, with serving manifests and the TFLite "
                   "models' checks for a push",
    "run_id": "the pipeline run's name, recorded in the pushed model's card",
}
