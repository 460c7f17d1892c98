"""Fixtures shared by the unit tests."""

import pytest

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import BASE_MODEL_FILE
from components.common.model.base_network import BaseNetworkSpec
from components.evaluate import core as evaluate_core
from components.evaluate.blessing import BlessingPolicy
from components.extract_features import core as extract_core
from components.train_head import core as train_core
from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.unit.helpers import IMAGE_SIZE, prepared_examples, save_tiny_base


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Examples, base, head and a blessed evaluation for a two-color task."""
    tmp_path = tmp_path_factory.mktemp("trained")
    tree = tmp_path / "images"
    for label, color in CLASS_COLORS.items():
        for index in range(20):
            write_image(tree / label / f"{index}.jpg", make_image(color, seed=index + 7 * len(label)))
    examples_dir = prepared_examples(tree, tmp_path)
    spec = BaseNetworkSpec(base_model=save_tiny_base(str(tmp_path / "tiny.keras")), image_size=IMAGE_SIZE)
    extract_core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                     base_model_dir=str(tmp_path / "base"), spec=spec)
    train = train_core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                           config=HeadConfig(epochs=5))
    base_model_path = str(tmp_path / "base" / BASE_MODEL_FILE)
    evaluate_core.run(examples_dir=examples_dir, base_model_path=base_model_path,
                      head_model_path=train.head_model_path, output_dir=str(tmp_path / "evaluation"),
                      policy=BlessingPolicy(accuracy_threshold=0.0))
    return {
        "tree": tree, "examples_dir": examples_dir, "evaluation_dir": str(tmp_path / "evaluation"),
        "base_model_path": base_model_path, "head_model_path": train.head_model_path,
        "features_dir": str(tmp_path / "features"),
    }


