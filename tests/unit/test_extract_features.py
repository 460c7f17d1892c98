"""Feature extraction: every supported base network, a user's .keras base, features per split."""

import numpy as np
import pytest
import tensorflow as tf

from components.common import storage
from components.common.records import parse_features
from components.extract_features import core
from components.extract_features.base_network import BaseNetworkSpec, build_feature_extractor
from tests.unit.helpers import IMAGE_SIZE, prepared_examples, save_tiny_base


@pytest.mark.parametrize(
    "name, kwargs, dim",
    [
        ("mobilenet", {"alpha": 0.25}, 256),
        ("mobilenet_v2", {"alpha": 0.35}, 1280),
        ("vgg16", {}, 512),
        ("resnet50", {}, 2048),
        ("efficientnet_b0", {}, 1280),
    ],
)
def test_applications_build_with_their_own_preprocessing(name, kwargs, dim):
    spec = BaseNetworkSpec(name=name, weights="none", image_size=32, **kwargs)
    extractor = build_feature_extractor(spec)

    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    features = extractor(images, training=False)
    assert features.shape == (2, dim)
    assert not extractor.trainable
    if name != "efficientnet_b0":  # EfficientNet rescales inside the network itself
        assert extractor.get_layer("preprocess_input").module


def test_flatten_pooling_keeps_the_spatial_map():
    spec = BaseNetworkSpec(name="mobilenet", alpha=0.25, weights="none", image_size=64, pooling="flatten")
    assert build_feature_extractor(spec).output_shape == (None, 2 * 2 * 256)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "alexnet"}, "base_model 'alexnet'"),
        ({"name": "/nowhere/model.keras"}, "no such .keras file"),
        ({"weights": "/nowhere/weights.h5"}, "base_weights"),
        ({"pooling": "max"}, "pooling"),
        ({"image_size": 8}, "image_size 8 is too small"),
        ({"alpha": 0}, "alpha"),
    ],
)
def test_bad_specs_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BaseNetworkSpec(**kwargs)


def test_user_base_with_the_wrong_input_size_is_refused(tmp_path):
    base = save_tiny_base(str(tmp_path / "base.keras"))
    with pytest.raises(ValueError, match="takes 16x16 images but image_size is 32"):
        build_feature_extractor(BaseNetworkSpec(name=base, image_size=32))


def test_run_writes_features_for_every_split(image_tree, tmp_path):
    examples_dir = prepared_examples(image_tree, tmp_path)
    base = save_tiny_base(str(tmp_path / "base.keras"))
    spec = BaseNetworkSpec(name=base, image_size=IMAGE_SIZE)

    result = core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                      base_model_dir=str(tmp_path / "base_model"), spec=spec, batch_size=7)

    assert result.dim == 4
    assert sum(result.counts.values()) == 40
    info = storage.read_json(str(tmp_path / "features" / core.FEATURES_INFO))
    assert info["dim"] == 4 and info["counts"] == result.counts
    train = list(tf.data.TFRecordDataset(str(tmp_path / "features" / "train.tfrecord")).map(
        lambda record: parse_features(record, 4)))
    assert len(train) == result.counts["train"]
    # The saved base gives the same features as the ones written.
    import keras

    saved = keras.saving.load_model(result.base_model_path)
    batch = next(iter(core.image_batches(examples_dir, "train", IMAGE_SIZE, 3)))[0]
    expected = np.stack([vector.numpy() for vector, _ in train[:3]])
    np.testing.assert_allclose(saved(batch).numpy(), expected, rtol=1e-5, atol=1e-6)
