"""Evaluate core: the joined model on the test images, against the champion now in serving.

Output directory layout (evaluation):
    metrics.json           the challenger's test metrics (see metrics.classification_metrics)
    blessing.json          the decision, every reason, the policy, the champion's metrics, the paired
                           comparison with it and the best recorded blessed version (blessing.py)
    test_predictions.npz   per test image, in file order: label indices, probabilities (averaged over
                           the views) and single_view_probabilities (the image alone)
The HTML report goes to its own artifact (report_path).
"""

import logging
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from components.common.config.head_config import HeadConfig
from components.common.contract import examples_info
from components.common.contract.artifact_files import (
    AUDIT_REPORT,
    BASE_NETWORK_INFO,
    FEATURES_INFO,
    FINE_TUNE_INFO,
    HISTORY,
    LABELS,
    LIFT,
    METRICS,
    PREDICTIONS,
)
from components.common.contract.example_batches import image_batches
from components.common.contract.record_parsing import parse_processed
from components.common.contract.serving_layout import latest_version_dir, model_directory
from components.common.images.views import answers_over_views
from components.common.model.accuracy_evidence import too_small, wilson_interval
from components.common.model.grad_cam import GradCam, NoFeatureMap, overlay
from components.common.model.modeling import class_probabilities, head_predictions, load_joined_model
from components.common.storage import atomic_files, gcs
from components.evaluate.blessing import (
    BlessingPolicy,
    best_in_serving,
    decide_blessing,
    paired_comparison,
    write_blessing,
)
from components.evaluate.metrics import classification_metrics
from components.evaluate.report import correct_sample, render_report, worst_mistakes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateResult:
    """The test metrics and the blessing decision."""

    metrics: dict  # `classification_metrics` on the test split: accuracy and its interval, AUC, per class
    labels: tuple[str, ...]
    blessed: bool
    reason: str  # the decision's reasons, joined with "; "
    champion: dict | None  # the serving model's scores on this run's test images; None when none is comparable


def predict_split(predict, examples_dir: str, split: str, image_size: int, batch_size: int):
    """(label_indices, probabilities) of `predict` (float images to probabilities) over a split."""
    labels, probabilities = [], []
    for images, label_indices in image_batches(examples_dir, split, image_size, batch_size):
        probabilities.append(np.asarray(predict(images)))
        labels.append(label_indices.numpy())
    if not labels:
        raise ValueError(f"the {split} split in {examples_dir} is empty: nothing to evaluate")
    return np.concatenate(labels), np.concatenate(probabilities)


def score_champion(champion_dir: str, examples_dir: str, image_size: int, labels: list[str],
                   batch_size: int, version: int | None = None) -> tuple[dict, np.ndarray, np.ndarray] | None:
    """The serving model on this run's test images, or None if it is not comparable.

    Returns:
        Its summary (version, uri, accuracy, auc), and per test image in file order the label
        index and whether its prediction is right: the challenger is compared with it image by image.
    """
    if gcs.is_gcs(champion_dir):
        # TensorFlow's gs:// file system reaches only Google's endpoints: load a local copy.
        with tempfile.TemporaryDirectory(prefix="headstart-champion-") as local_dir:
            gcs.download_tree(champion_dir, local_dir)
            found = score_champion(local_dir, examples_dir, image_size, labels, batch_size,
                                   version=int(champion_dir.rstrip("/").rsplit("/", 1)[1]))
        return ({**found[0], "uri": champion_dir}, *found[1:]) if found else None
    serving = tf.saved_model.load(champion_dir)
    signature = serving.signatures.get("serving_images")
    version = version or int(os.path.basename(champion_dir))
    if signature is None:
        logger.info("evaluate: champion version %d has no serving_images signature: not compared", version)
        return None
    probe = signature(images=tf.zeros([1, image_size, image_size, 3]))
    champion_labels = [name.decode() for name in probe["class_names"].numpy()[0]]
    if champion_labels != labels:
        logger.info("evaluate: champion version %d knows classes %s, not %s: not compared",
                    version, champion_labels, labels)
        return None
    label_indices, probabilities = predict_split(
        lambda images: signature(images=images)["probabilities"].numpy(), examples_dir, "test", image_size, batch_size
    )
    metrics = classification_metrics(label_indices, probabilities, labels)
    summary = {"version": version, "uri": champion_dir, "accuracy": metrics["accuracy"], "auc": metrics["auc"]}
    return summary, label_indices, probabilities.argmax(axis=1) == label_indices


def _shown_images(stats: examples_info.ExampleStats, chosen: list[int], label_indices, probabilities,
                  labels) -> list[dict]:
    """The chosen test images' pixels, labels and origins, for the report's thumbnails, in `chosen`'s order."""
    wanted = set(chosen)
    found: dict[int, dict] = {}
    records = tf.data.TFRecordDataset(stats.split_files("test"))
    for index, record in enumerate(records.map(lambda r: parse_processed(r, stats.image_size))):
        if len(found) == len(wanted):
            break  # the rest of the split holds none of them
        if index in wanted:
            predicted = int(probabilities[index].argmax())
            found[index] = {"pixels": record["pixels"].numpy(), "origin": record["origin"].numpy().decode(),
                            "true": labels[int(label_indices[index])], "predicted": labels[predicted],
                            "confidence": float(probabilities[index, predicted])}
    return [found[index] for index in chosen]


def _explain(shown: list[dict], model_paths: tuple[str, str], trust_base_model: bool) -> str | None:
    """Adds each shown image's Grad-CAM overlay (of its predicted class) as "overlay"; why not, if it cannot."""
    if not shown:
        return None
    try:
        cam = GradCam(load_joined_model(*model_paths, trusted=trust_base_model))
    except NoFeatureMap as error:
        return str(error)
    heatmaps, _ = cam(tf.constant(np.stack([image["pixels"] for image in shown]), tf.float32))
    for image, heatmap in zip(shown, heatmaps.numpy()):
        image["overlay"] = overlay(image["pixels"], heatmap)
    return None


def _test_predictions(examples_dir: str, features_dir: str | None, base_model_path: str, head_model_path: str,
                      image_size: int, batch_size: int, trust_base_model: bool,
                      views: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's (label indices, probabilities averaged over `views`, probabilities of each image alone).

    The last are what a model answering one image without its other views gives (a TFLite model).

    Unless fine-tuning changed the base, the extracted test features (of each view) are the base's
    output already, and only the head runs; the push step's infra-check still runs the whole
    exported model on the test images and must match these probabilities.
    """
    tuned = os.path.join(os.path.dirname(head_model_path), FINE_TUNE_INFO)
    fine_tuned = os.path.isfile(tuned) and atomic_files.read_json(tuned).get("ran", False)
    if features_dir and not fine_tuned:
        extracted = atomic_files.read_json(os.path.join(features_dir, FEATURES_INFO)).get("test_views", ["identity"])
        if tuple(extracted) != tuple(views):
            raise ValueError(f"the features hold the test views {extracted}, but evaluation asks for {list(views)}")
        logger.info("evaluate: scoring the head on the extracted test features (the base is unchanged), "
                    "averaged over the views %s", "+".join(views))
        labels, alone = head_predictions(features_dir, head_model_path, "test")
        probabilities = alone
        for view in views[1:]:
            probabilities = probabilities + head_predictions(features_dir, head_model_path, f"test.{view}")[1]
        return labels, probabilities / len(views), alone
    model = load_joined_model(base_model_path, head_model_path, trusted=trust_base_model)
    predict = lambda images: class_probabilities(model(images, training=False))  # noqa: E731
    infer = tf.function(lambda images: tf.stack(answers_over_views(predict, images, views), axis=1),
                        reduce_retracing=True)
    labels, by_view = predict_split(infer, examples_dir, "test", image_size, batch_size)
    return labels, by_view.sum(axis=1) / len(views), by_view[:, 0]


def _file_name(value: str) -> str:
    """A keras.applications name as it is, a file by its name: the report is read elsewhere."""
    return value if value.startswith("gs://") else os.path.basename(value.rstrip("/")) or value


def _what_the_report_covers(run_id: str | None, source: str | None, base_model_path: str, history: dict,
                            views: tuple[str, ...], model_name: str | None, champion: dict | None) -> dict:
    """The report's head: which run, on what data, with which base, settings and model name."""
    base_info = os.path.join(os.path.dirname(base_model_path), BASE_NETWORK_INFO)
    base = atomic_files.read_json(base_info) if os.path.isfile(base_info) else None
    config = history.get("config") or {}
    return {
        "run": run_id, "source": source,
        "base": (f"{_file_name(base['base_model'])} (weights {_file_name(base['base_weights'])}, alpha "
                 f"{base['alpha']}, {base['image_size']} px, {base['pooling']} pooling, {base['dim']} features)"
                 if base else None),
        "settings": {"head": f"hidden units {config.get('hidden_units')}, dropout {config.get('dropout')}, "
                             f"learning rate {config.get('learning_rate')}",
                     "epochs": f"{history.get('epochs_run')} run of {config.get('epochs')}, "
                               f"best {history.get('best_epoch')}",
                     "views averaged at test": "+".join(views)},
        "model_name": model_name, "champion_version": champion["version"] if champion else None,
    }


def run(*, examples_dir: str, base_model_path: str, head_model_path: str, output_dir: str,
        policy: BlessingPolicy, serving_root: str | None = None, model_name: str | None = None,
        lift_dir: str | None = None, audit_dir: str | None = None, report_path: str | None = None,
        batch_size: int = HeadConfig.batch_size,
        features_dir: str | None = None, trust_base_model: bool = False,
        views: tuple[str, ...] = ("identity",), run_id: str | None = None) -> EvaluateResult:
    """Evaluates base + head on the test split, compares with the champion, decides the blessing.

    Args:
        examples_dir: preprocess's output.
        base_model_path: the saved base network.
        head_model_path: the saved head; its training history lies beside it, for the report.
        output_dir: the evaluation artifact directory.
        policy: thresholds, champion tolerance, confidence and drift margin.
        serving_root: the serving root the champion and the recorded versions live under; None
            for no paired comparison and no drift guard.
        model_name: the model's name under `serving_root`; None as for `serving_root`.
        lift_dir: the transfer-lift artifact directory, if one was made.
        audit_dir: the data audit's artifact directory, shown in the report, if one was made.
        report_path: where to write the HTML report; None for no report.
        batch_size: images per inference batch.
        features_dir: extract_features's output; when the base was not fine-tuned, the head is
            scored on its test vectors instead of running the base again. None to always run it.
        trust_base_model: the run's own trust in its base: load the saved base outside Keras safe
            mode (its Lambda layers run).
        views: the views the model averages its answers over (`ViewPolicy.test_views`).
        run_id: the pipeline run evaluating, named at the head of the report.
    """
    stats = examples_info.read_stats(examples_dir)
    image_size = stats.image_size
    labels = atomic_files.read_lines(os.path.join(examples_dir, LABELS))
    label_indices, probabilities, single_view = _test_predictions(
        examples_dir, features_dir, base_model_path, head_model_path, image_size, batch_size, trust_base_model,
        tuple(views))
    metrics = classification_metrics(label_indices, probabilities, labels)
    metrics["labels"] = labels
    # The views the model averages over: push exports the model that averages the same ones.
    metrics["views"] = list(views)
    lift = atomic_files.read_json(os.path.join(lift_dir, LIFT)) if lift_dir else None
    if lift and lift.get("measured"):
        metrics["transfer_lift"] = {"pretrained_accuracy": metrics["accuracy"],
                                    "random_accuracy": lift["random_accuracy"],
                                    "lift": metrics["accuracy"] - lift["random_accuracy"]}

    in_serving = bool(serving_root and model_name)
    champion_dir = latest_version_dir(serving_root, model_name) if in_serving else None
    scored = score_champion(champion_dir, examples_dir, image_size, labels, batch_size) if champion_dir else None
    champion, champion_labels, champion_correct = scored or (None, None, None)
    paired = None
    if champion:
        if not np.array_equal(champion_labels, label_indices):
            raise RuntimeError("the champion was scored on the test images in another order than the challenger: "
                               "no paired comparison is possible")
        paired = paired_comparison(probabilities.argmax(axis=1) == label_indices, champion_correct, policy.confidence)
    # Whether the test split is large enough for its accuracy to count (blessing rule 4); shown
    # wherever the accuracy is.
    metrics["accuracy_wilson95"] = list(wilson_interval(metrics["accuracy"], metrics["count"]))
    metrics["small_test_split"] = too_small(metrics["accuracy"], metrics["count"], policy.max_test_interval)
    best = best_in_serving(model_directory(serving_root, model_name) if in_serving else None, labels,
                           policy.max_test_interval)
    blessed, reasons = decide_blessing(metrics, champion, policy, paired=paired, best=best)
    reason = "; ".join(reasons)

    os.makedirs(output_dir, exist_ok=True)
    atomic_files.write_json(os.path.join(output_dir, METRICS), metrics)
    write_blessing(output_dir, blessed, reasons, champion, policy, paired=paired, best=best)
    with atomic_files.atomic_path(os.path.join(output_dir, PREDICTIONS)) as tmp_path, open(tmp_path, "wb") as f:
        np.savez(f, label_indices=label_indices, probabilities=probabilities,
                 single_view_probabilities=single_view)
    if report_path:
        history = atomic_files.read_json(os.path.join(os.path.dirname(head_model_path), HISTORY))
        mistakes, correct = worst_mistakes(label_indices, probabilities), correct_sample(label_indices, probabilities)
        shown = _shown_images(stats, mistakes + correct, label_indices, probabilities, labels)
        no_grad_cam = _explain(shown, (base_model_path, head_model_path), trust_base_model)
        about = _what_the_report_covers(run_id, stats.source, base_model_path, history, views, model_name, champion)
        page = render_report(
            metrics=metrics, labels=labels, history=history, lift=lift, about=about,
            blessing={"blessed": blessed, "reasons": reasons, "champion": champion},
            mistakes=shown[:len(mistakes)], correct=shown[len(mistakes):], no_grad_cam=no_grad_cam,
            audit=atomic_files.read_json(os.path.join(audit_dir, AUDIT_REPORT)) if audit_dir else None,
            near_duplicates=stats.near_duplicates_dropped,
            edits=examples_info.edits(examples_dir),
        )
        atomic_files.write_text(report_path, page)
    logger.info(
        "evaluate: accuracy %.4f (95%% CI %.4f-%.4f), auc %.4f on %d test images",
        metrics["accuracy"], *metrics["accuracy_ci95"], metrics["auc"], metrics["count"],
    )
    if "transfer_lift" in metrics:
        logger.info("evaluate: transfer lift %+.4f (random-weight base: accuracy %.4f)",
                    metrics["transfer_lift"]["lift"], metrics["transfer_lift"]["random_accuracy"])
    if champion:
        logger.info("evaluate: champion version %d: accuracy %.4f on the same images", champion["version"],
                    champion["accuracy"])
    logger.info("evaluate: %s: %s", "blessed" if blessed else "NOT blessed", reason)
    return EvaluateResult(metrics, tuple(labels), blessed, reason, champion)
