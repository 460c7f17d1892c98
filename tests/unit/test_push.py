"""Push: the serving export answers raw image bytes as the evaluated model does, atomically versioned."""

import os
import threading

import numpy as np
import pytest
import tensorflow as tf

from components.common import storage
from components.common.images import decode_and_resize
from components.common.modeling import class_probabilities, load_joined_model
from components.evaluate import core as evaluate_core
from components.extract_features import core as extract_core
from components.extract_features.base_network import BaseNetworkSpec
from components.push import core
from components.train_head import core as train_core
from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.unit.helpers import IMAGE_SIZE, prepared_examples, save_tiny_base


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Examples, base, head and a blessed evaluation for a two-color task."""
    tmp_path = tmp_path_factory.mktemp("trained")
    tree = tmp_path / "images"
    for label, color in CLASS_COLORS.items():
        for index in range(20):
            write_image(tree / label / f"{index}.jpg", make_image(color, seed=index + 7 * len(label)))
    examples_dir = prepared_examples(tree, tmp_path)
    spec = BaseNetworkSpec(name=save_tiny_base(str(tmp_path / "tiny.keras")), image_size=IMAGE_SIZE)
    extract = extract_core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                               base_model_dir=str(tmp_path / "base"), spec=spec)
    train = train_core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                           config=train_core.HeadConfig(epochs=5))
    evaluate_core.run(examples_dir=examples_dir, base_model_path=extract.base_model_path,
                      head_model_path=train.head_model_path, output_dir=str(tmp_path / "evaluation"),
                      accuracy_threshold=0.0)
    return {
        "tree": tree, "examples_dir": examples_dir, "evaluation_dir": str(tmp_path / "evaluation"),
        "base_model_path": extract.base_model_path, "head_model_path": train.head_model_path,
    }


def push(trained, serving_root, output_dir, evaluation_dir=None):
    return core.run(
        evaluation_dir=evaluation_dir or trained["evaluation_dir"], examples_dir=trained["examples_dir"],
        base_model_path=trained["base_model_path"], head_model_path=trained["head_model_path"],
        serving_root=str(serving_root), model_name="colors", output_dir=str(output_dir),
    )


def test_pushed_model_answers_jpeg_bytes_like_the_evaluated_model(trained, tmp_path):
    result = push(trained, tmp_path / "serving", tmp_path / "push")

    assert result.pushed and result.version == 1
    assert result.uri == str(tmp_path / "serving" / "colors" / "1")
    assert os.listdir(tmp_path / "serving" / "colors") == ["1"]  # no staging directory left behind
    jpegs = [(trained["tree"] / label / "3.jpg").read_bytes() for label in CLASS_COLORS]
    served = tf.saved_model.load(result.uri).signatures["serving_default"](image_bytes=tf.constant(jpegs))

    probabilities = served["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert [name.decode() for name in served["class_names"].numpy()[0]] == ["blue", "red"]
    assert served["class_name"].numpy()[0].decode() in ("blue", "red")
    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    pixels = tf.stack([tf.cast(decode_and_resize(tf.constant(j), IMAGE_SIZE), tf.float32) for j in jpegs])
    np.testing.assert_allclose(probabilities, class_probabilities(model(pixels)).numpy(), atol=1e-4)

    decoded = tf.saved_model.load(result.uri).signatures["serving_images"](images=pixels)
    np.testing.assert_allclose(decoded["probabilities"].numpy(), probabilities, atol=1e-5)


def test_versions_increase_and_nothing_is_overwritten(trained, tmp_path):
    first = push(trained, tmp_path / "serving", tmp_path / "p1")
    second = push(trained, tmp_path / "serving", tmp_path / "p2")
    assert (first.version, second.version) == (1, 2)
    assert core.existing_versions(str(tmp_path / "serving" / "colors")) == [1, 2]


def test_a_model_not_blessed_is_not_pushed(trained, tmp_path):
    evaluation = tmp_path / "evaluation"
    storage.write_json(str(evaluation / evaluate_core.BLESSING), {"blessed": False, "reason": "accuracy too low"})

    result = push(trained, tmp_path / "serving", tmp_path / "push", evaluation_dir=str(evaluation))

    assert not result.pushed and result.uri is None
    assert "accuracy too low" in result.reason
    assert not (tmp_path / "serving").exists()
    assert storage.read_json(str(tmp_path / "push" / core.PUSH_RESULT))["pushed"] is False


def test_concurrent_commits_take_distinct_versions(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "1").mkdir()
    (model_dir / "1" / "saved_model.pb").write_bytes(b"existing")
    stagings = []
    for index in range(6):
        staging = model_dir / f".staging-{index}"
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(str(index).encode())
        stagings.append(staging)

    versions = []
    threads = [threading.Thread(target=lambda s=s: versions.append(core._commit(str(s), str(model_dir))))
               for s in stagings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(versions) == [2, 3, 4, 5, 6, 7]
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"existing"
    contents = sorted((model_dir / str(v) / "saved_model.pb").read_bytes() for v in versions)
    assert contents == [str(i).encode() for i in range(6)]


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_model_names_are_refused(trained, tmp_path, name):
    with pytest.raises(ValueError, match="model_name"):
        core.run(evaluation_dir=trained["evaluation_dir"], examples_dir=trained["examples_dir"],
                 base_model_path="", head_model_path="", serving_root=str(tmp_path), model_name=name,
                 output_dir=str(tmp_path / "out"))
