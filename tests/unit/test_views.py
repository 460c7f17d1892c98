"""Augmented views: made alike everywhere, each extracted once into the store, averaged when asked."""

import numpy as np
import pytest
import tensorflow as tf

from components.common.config.view_policy import VIEW_NAMES, ViewPolicy, views_to_average
from components.common.contract.artifact_files import FEATURE_DIGESTS_SUFFIX, FEATURES_INFO
from components.common.contract.record_parsing import parse_feature_batch
from components.common.images.views import averaged_over_views, view_of
from components.common.model.base_network import BaseNetworkSpec
from components.common.storage import atomic_files
from components.extract_features import core
from tests.unit.helpers import IMAGE_SIZE, prepared_examples, save_tiny_base


def records(path: str) -> list[np.ndarray]:
    return [vector.numpy() for vector, _ in tf.data.TFRecordDataset(path).batch(64).map(
        lambda batch: parse_feature_batch(batch, 4)).unbatch()]


def test_views_are_mirrors_and_central_crops_of_the_same_size():
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 20, 20, 3)), tf.uint8)
    assert np.array_equal(view_of(pixels, "identity"), pixels)
    assert np.array_equal(view_of(pixels, "flip"), pixels.numpy()[:, :, ::-1])
    for crop in ("crop85", "crop70"):
        cropped = view_of(pixels, crop)
        assert cropped.shape == pixels.shape and cropped.dtype == tf.uint8
        assert not np.array_equal(cropped, pixels)
    with pytest.raises(ValueError, match="unknown view 'rotate'"):
        view_of(pixels, "rotate")
    with pytest.raises(ValueError, match="augment_views must be 1, 2 or 4"):
        ViewPolicy(augment_views=3)


def test_the_test_views_can_outnumber_the_training_views(tmp_path):
    policy = ViewPolicy(augment_views=2, test_time_augmentation=True, test_time_views=4)
    assert (policy.train_views, policy.test_views) == (VIEW_NAMES[:2], VIEW_NAMES)
    assert ViewPolicy(augment_views=4, test_time_views=0).test_views == VIEW_NAMES
    assert ViewPolicy(augment_views=4, test_time_augmentation=False, test_time_views=4).test_views == ("identity",)
    atomic_files.write_json(str(tmp_path / FEATURES_INFO), {"train_views": list(VIEW_NAMES[:2]),
                                                            "test_views": list(VIEW_NAMES)})
    # Evaluate and push average the views extracted for the test split, not the training ones.
    assert views_to_average(True, str(tmp_path)) == VIEW_NAMES
    assert views_to_average(False, str(tmp_path)) == ("identity",)
    with pytest.raises(ValueError, match="test_time_views must be 0"):
        ViewPolicy(test_time_views=3)


def test_the_average_over_views_is_the_mean_of_each_views_answer():
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (3, 12, 12, 3)), tf.float32)

    def predict(batch):  # the mean of the left half: a mirror changes it
        return tf.reduce_mean(batch[:, :, :6, :], axis=[1, 2])

    averaged = averaged_over_views(predict, images, VIEW_NAMES[:2]).numpy()
    mirrored = predict(tf.cast(view_of(tf.cast(images, tf.uint8), "flip"), tf.float32)).numpy()
    np.testing.assert_allclose(averaged, (predict(images).numpy() + mirrored) / 2, rtol=1e-6)


def test_training_images_get_every_view_and_test_images_theirs_with_test_time_augmentation(image_tree, tmp_path):
    examples_dir = prepared_examples(image_tree, tmp_path)
    spec = BaseNetworkSpec(base_model=save_tiny_base(str(tmp_path / "base.keras")), image_size=IMAGE_SIZE)
    store = str(tmp_path / "store")
    plain = core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "plain"),
                     base_model_dir=str(tmp_path / "b1"), spec=spec, store_dir=store)
    augmented = core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "views"),
                         base_model_dir=str(tmp_path / "b2"), spec=spec, store_dir=store,
                         views=ViewPolicy(augment_views=4, test_time_augmentation=True))

    train, test = plain.counts["train"], plain.counts["test"]
    assert augmented.counts == plain.counts
    # The images' own vectors came from the store; only the new views ran through the base.
    info = atomic_files.read_json(str(tmp_path / "views" / FEATURES_INFO))
    assert (info["extracted"], info["vectors_computed"]) == (0, 3 * (train + test))
    assert info["train_views"] == info["test_views"] == list(VIEW_NAMES)
    views_of_train = records(str(tmp_path / "views" / "train.tfrecord"))
    assert len(views_of_train) == 4 * train
    assert len(atomic_files.read_lines(str(tmp_path / "views" / f"train{FEATURE_DIGESTS_SUFFIX}"))) == 4 * train
    # Each image's four vectors lie together, the image's own first and the same as without views.
    np.testing.assert_allclose(np.stack(views_of_train[::4]), np.stack(records(str(tmp_path / "plain" /
                                                                                    "train.tfrecord"))), atol=1e-6)
    assert len(records(str(tmp_path / "views" / "eval.tfrecord"))) == plain.counts["eval"]
    for view in VIEW_NAMES[1:]:
        assert len(records(str(tmp_path / "views" / f"test.{view}.tfrecord"))) == test


def test_the_export_answers_test_images_as_evaluate_scored_them_with_every_view(trained, tmp_path):
    """Train/serve skew with all four views: the exported model's average is evaluate's, to 1e-4."""
    from components.common.contract.example_batches import image_batches
    from components.common.model.modeling import load_joined_model
    from components.evaluate import core as evaluate_core
    from components.evaluate.blessing import BlessingPolicy
    from components.push.export import export_serving_model

    spec = BaseNetworkSpec(base_model=trained["base_model_path"], image_size=IMAGE_SIZE)
    core.run(examples_dir=trained["examples_dir"], features_dir=str(tmp_path / "features"),
             base_model_dir=str(tmp_path / "base"), spec=spec, views=ViewPolicy(4, test_time_augmentation=True))
    scored = {}
    # From the extracted features of each view, from the joined model on the pixels, and the image alone.
    for name, views, features_dir in (("features", VIEW_NAMES, str(tmp_path / "features")),
                                      ("pixels", VIEW_NAMES, None), ("alone", VIEW_NAMES[:1], None)):
        evaluate_core.run(examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
                          head_model_path=trained["head_model_path"], output_dir=str(tmp_path / name),
                          policy=BlessingPolicy(accuracy_threshold=0.0), features_dir=features_dir, views=views)
        with np.load(tmp_path / name / "test_predictions.npz") as predictions:
            scored[name] = {key: predictions[key] for key in predictions.files}
    for key in ("probabilities", "single_view_probabilities"):
        np.testing.assert_allclose(scored["pixels"][key], scored["features"][key], atol=1e-4)
    # The image alone, as a TFLite model is checked against it: what evaluate scores without views.
    np.testing.assert_allclose(scored["features"]["single_view_probabilities"], scored["alone"]["probabilities"],
                               atol=1e-4)
    assert not np.allclose(scored["features"]["probabilities"], scored["alone"]["probabilities"], atol=1e-4)

    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    export_serving_model(model, ["blue", "red"], IMAGE_SIZE, str(tmp_path / "export"), VIEW_NAMES)
    pixels = np.concatenate([images.numpy() for images, _ in image_batches(trained["examples_dir"], "test",
                                                                            IMAGE_SIZE, 64)])
    encoded = tf.stack([tf.io.encode_png(tf.cast(image, tf.uint8)) for image in pixels])  # lossless
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](image_bytes=encoded)
    np.testing.assert_allclose(served["probabilities"].numpy(), scored["features"]["probabilities"], atol=1e-4)
