"""Feature extraction: every supported base network, a user's .keras base, features per split."""

import numpy as np
import pytest
import tensorflow as tf

from components.common.contract.artifact_files import BASE_MODEL_FILE, BASE_NETWORK_INFO, FEATURES_INFO
from components.common.contract.example_batches import image_batches
from components.common.contract.record_parsing import parse_feature_batch
from components.common.model.base_network import BaseNetworkSpec, build_feature_extractor, load_saved_model
from components.common.model.feature_store import FeatureStore
from components.common.storage import atomic_files
from components.extract_features import core
from tests.conftest import make_image, write_image
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
    spec = BaseNetworkSpec(base_model=name, base_weights="none", image_size=32, **kwargs)
    extractor = build_feature_extractor(spec)

    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    features = extractor(images, training=False)
    assert features.shape == (2, dim)
    assert not extractor.trainable
    if name != "efficientnet_b0":  # EfficientNet rescales inside the network itself
        assert extractor.get_layer("preprocess_input").module


def test_flatten_pooling_keeps_the_spatial_map():
    spec = BaseNetworkSpec(base_model="mobilenet", alpha=0.25, base_weights="none", image_size=64, pooling="flatten")
    assert build_feature_extractor(spec).output_shape == (None, 2 * 2 * 256)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_model": "alexnet"}, "base_model 'alexnet'"),
        ({"pooling": "max"}, "pooling"),
        ({"image_size": 8}, "image_size 8 is too small"),
        ({"alpha": 0}, "alpha"),
    ],
)
def test_bad_specs_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BaseNetworkSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_model": "/nowhere/model.keras"}, "base_model '/nowhere/model.keras': no such .keras file"),
        ({"base_weights": "/nowhere/weights.h5"}, "base_weights '/nowhere/weights.h5'"),
    ],
)
def test_missing_files_are_named_when_the_network_is_built(kwargs, message):
    # A spec may name files that exist only where the step runs (a cluster volume); they are
    # looked for when the network is built, not when the spec is made.
    spec = BaseNetworkSpec(**kwargs)
    assert spec.missing_files()
    with pytest.raises(ValueError, match=message):
        build_feature_extractor(spec)


def test_gcs_files_are_not_looked_for_on_this_machine():
    spec = BaseNetworkSpec(base_model="gs://models/base.keras", base_weights="gs://models/weights.h5")
    assert spec.missing_files() == []


def test_user_base_with_the_wrong_input_size_is_refused(tmp_path):
    base = save_tiny_base(str(tmp_path / "base.keras"))
    with pytest.raises(ValueError, match="takes 16x16 images but image_size is 32"):
        build_feature_extractor(BaseNetworkSpec(base_model=base, image_size=32))


def test_run_writes_features_for_every_split(image_tree, tmp_path):
    examples_dir = prepared_examples(image_tree, tmp_path)
    base = save_tiny_base(str(tmp_path / "base.keras"))
    spec = BaseNetworkSpec(base_model=base, image_size=IMAGE_SIZE)

    result = core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                      base_model_dir=str(tmp_path / "base_model"), spec=spec, batch_size=7)

    assert result.dim == 4
    assert sum(result.counts.values()) == 40
    info = atomic_files.read_json(str(tmp_path / "features" / FEATURES_INFO))
    assert info["dim"] == 4 and info["counts"] == result.counts
    train = list(tf.data.TFRecordDataset(str(tmp_path / "features" / "train.tfrecord")).batch(1).map(
        lambda records: parse_feature_batch(records, 4)).unbatch())
    assert len(train) == result.counts["train"]
    # The saved base gives the same features as the ones written (the train split is written in
    # digest order, so each image's vector is looked up among them, not by position).
    import keras

    saved = keras.saving.load_model(str(tmp_path / "base_model" / BASE_MODEL_FILE))
    images = np.concatenate([pixels for pixels, _ in image_batches(examples_dir, "train", IMAGE_SIZE, 8)])
    from_images = saved(images).numpy()
    written = np.stack([vector.numpy() for vector, _ in train])
    distances = np.abs(from_images[:, None, :] - written[None, :, :]).max(axis=2)
    assert distances.min(axis=1).max() < 1e-5
    assert sorted(distances.argmin(axis=1)) == list(range(len(written)))  # one written vector per image
    # The examples of a folder tree come class after class; the written train split mixes them.
    in_examples = [int(label) for _, labels in image_batches(examples_dir, "train", IMAGE_SIZE, 8) for label in labels]
    assert in_examples == sorted(in_examples)
    assert [int(label) for _, label in train] != in_examples


def test_compact_examples_give_the_same_features_as_full_ones(image_tree, tmp_path):
    spec = BaseNetworkSpec(base_model=save_tiny_base(str(tmp_path / "base.keras")), image_size=IMAGE_SIZE)
    written = {}
    for compact in (False, True):
        examples_dir = prepared_examples(image_tree, tmp_path / f"compact-{compact}", compact_examples=compact)
        core.run(examples_dir=examples_dir, features_dir=str(tmp_path / f"features-{compact}"),
                 base_model_dir=str(tmp_path / f"base-{compact}"), spec=spec, batch_size=7)
        written[compact] = {split: (tmp_path / f"features-{compact}" / f"{split}.tfrecord").read_bytes()
                            for split in ("train", "eval", "test")}
    assert written[True] == written[False]


def test_store_keeps_vectors_by_digest_and_ignores_a_chunk_without_its_digests(tmp_path):
    store = FeatureStore(str(tmp_path / "store"))
    store.add(["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.float32))
    # A chunk whose vectors were written but not its digests: a run killed between the two.
    np.save(tmp_path / "store" / "orphan.vectors.npy", np.zeros((1, 2), np.float32))
    reopened = FeatureStore(str(tmp_path / "store"))
    assert len(reopened) == 2 and "a" in reopened and "c" not in reopened
    np.testing.assert_array_equal(reopened.get("b"), [3, 4])
    assert len(FeatureStore(str(tmp_path / "store"), ignore_existing=True)) == 0


def test_a_second_run_extracts_only_the_images_the_store_has_not_seen(image_tree, tmp_path):
    base = save_tiny_base(str(tmp_path / "base.keras"))
    spec = BaseNetworkSpec(base_model=base, image_size=IMAGE_SIZE)
    store_dir = str(tmp_path / "store")
    first_examples = prepared_examples(image_tree, tmp_path / "first")
    first = core.run(examples_dir=first_examples, features_dir=str(tmp_path / "f1"),
                     base_model_dir=str(tmp_path / "b1"), spec=spec, batch_size=7, store_dir=store_dir)
    assert first.extracted == 40

    for index in range(20, 23):  # 3 new images, under 10%
        write_image(image_tree / "red" / f"red_{index}.jpg", make_image((200, 30, 30), seed=index + 999))
    second_examples = prepared_examples(image_tree, tmp_path / "second")
    second = core.run(examples_dir=second_examples, features_dir=str(tmp_path / "f2"),
                      base_model_dir=str(tmp_path / "b2"), spec=spec, batch_size=7, store_dir=store_dir)
    assert second.extracted == 3 and sum(second.counts.values()) == 43
    info = atomic_files.read_json(str(tmp_path / "f2" / FEATURES_INFO))
    assert (info["extracted"], info["reused"]) == (3, 40)

    # Vectors from the store are the ones a full extraction writes.
    full = core.run(examples_dir=second_examples, features_dir=str(tmp_path / "f3"),
                    base_model_dir=str(tmp_path / "b3"), spec=spec, batch_size=7, store_dir=store_dir,
                    reuse_features=False)
    assert full.extracted == 43
    for split in ("train", "eval", "test"):
        stored, fresh = (list(tf.data.TFRecordDataset(str(tmp_path / name / f"{split}.tfrecord")).batch(64).map(
            lambda records: parse_feature_batch(records, 4)).unbatch()) for name in ("f2", "f3"))
        assert len(stored) == len(fresh)
        for (a, label_a), (b, label_b) in zip(stored, fresh):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
            assert int(label_a) == int(label_b)


def test_a_base_with_code_in_it_is_refused_unless_trusted(image_tree, tmp_path):
    import keras

    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    scaled = keras.layers.Lambda(lambda pixels: pixels / 255.0)(images)  # arbitrary Python, saved as bytecode
    path = str(tmp_path / "lambda_base.keras")
    keras.Model(images, keras.layers.Conv2D(2, 3)(scaled)).save(path)

    with pytest.raises(ValueError, match="pass --trust-base-model"):
        build_feature_extractor(BaseNetworkSpec(base_model=path, image_size=IMAGE_SIZE))

    examples_dir = prepared_examples(image_tree, tmp_path)
    spec = BaseNetworkSpec(base_model=path, image_size=IMAGE_SIZE, trust_base_model=True)
    result = core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                      base_model_dir=str(tmp_path / "base_model"), spec=spec, batch_size=8)
    assert result.dim == 2
    # The steps after extraction load the saved extractor outside safe mode only when their own
    # run trusts it, whatever the info file beside it says.
    assert atomic_files.read_json(str(tmp_path / "base_model" / BASE_NETWORK_INFO))["trust_base_model"]
    with pytest.raises(ValueError, match="Lambda layer"):
        load_saved_model(str(tmp_path / "base_model" / BASE_MODEL_FILE))
    assert load_saved_model(str(tmp_path / "base_model" / BASE_MODEL_FILE), trusted=True).output_shape == (None, 2)


def test_random_bases_never_share_a_store(image_tree, tmp_path):
    """`--base-weights none` draws new weights on every build: a second run must not take the
    first run's vectors from the store, which came from another network."""
    spec = BaseNetworkSpec(base_model="mobilenet", alpha=0.25, base_weights="none", image_size=32)
    examples = prepared_examples(image_tree, tmp_path / "examples", image_size=32)
    runs = [core.run(examples_dir=examples, features_dir=str(tmp_path / f"f{index}"),
                     base_model_dir=str(tmp_path / f"b{index}"), spec=spec, store_dir=str(tmp_path / "store"))
            for index in (1, 2)]
    assert [result.extracted for result in runs] == [40, 40]
    assert len(list(tmp_path.glob("store-weights-*"))) == 2


def test_calls_in_flight_store_each_vector_under_its_own_key(tmp_path):
    import threading
    import time

    from components.common.model.feature_writing import _Inference, _StoreFiller

    first_call_started = threading.Event()

    def infer(pixels):  # each image's vector is its first pixel; the first call finishes last
        if not first_call_started.is_set():
            first_call_started.set()
            time.sleep(0.3)
        return tf.cast(pixels[:, 0, 0, :1], tf.float32)

    store = FeatureStore(str(tmp_path / "store"))
    filler = _StoreFiller(store, images=6)
    with _Inference(infer, filler) as inference:
        for call in range(3):
            keys = [f"image-{call}-{row}" for row in range(2)]
            pixels = tf.constant([[[[10 * call + row] * 3]] for row in range(2)], tf.uint8)
            inference.submit(keys, pixels, "identity")
            # Submitted keys count as extracted at once, so a later batch never runs them again.
            assert all(key in inference for key in keys)
        inference.finish()
    filler.flush()
    assert len(store) == 6
    for call in range(3):
        for row in range(2):
            np.testing.assert_array_equal(store.get(f"image-{call}-{row}"), [10 * call + row])


def test_each_call_gets_its_share_of_the_cores_before_the_runtime_starts():
    import subprocess
    import sys

    # A fresh process: this one's TensorFlow runtime started with the first test.
    script = (
        "import tensorflow as tf\n"
        "from components.common.runtime.cpu_quota import available_cpus\n"
        "from components.common.runtime.call_threads import share_cores_between_calls\n"
        "threads = share_cores_between_calls(2)\n"
        "intra = tf.config.threading.get_intra_op_parallelism_threads\n"
        "print(threads, max(1, available_cpus() // 2), intra())\n"
        "tf.constant(1.0) + 1.0\n"
        "print(available_cpus(), share_cores_between_calls(1), intra())\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert printed[0] == printed[1] == printed[2]  # the share it reports is the one TensorFlow got
    cpus, again, threads_after = printed[3:]
    # Once the runtime has started, its threads are left as they are.
    assert threads_after == printed[2]
    assert again == ("None" if cpus != printed[2] else printed[2])


def test_imagenet_weights_that_cannot_be_downloaded_name_the_way_out(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    spec = BaseNetworkSpec(base_model="mobilenet", alpha=0.25, image_size=96, base_weights="imagenet")
    with pytest.raises(ValueError, match="ImageNet weights of mobilenet could not be downloaded") as raised:
        build_feature_extractor(spec)
    assert "--base-weights FILE" in str(raised.value) and "mobilenet_2_5_224_tf_no_top.h5" in str(raised.value)
