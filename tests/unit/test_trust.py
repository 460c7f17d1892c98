"""Trust in a saved base comes from the run's own `trust_base_model`, never from a file beside the model.

Anyone who can write to a shared cache or pipeline root could plant a `.keras` extractor holding
a Lambda layer, with a `base_network.json` claiming the user trusted it; every step after
extraction must still load it in Keras safe mode unless this run said to trust it.
"""

import re
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import BASE_MODEL_FILE, BASE_NETWORK_INFO
from components.common.model.base_network import BaseNetworkSpec, load_saved_model
from components.common.model.modeling import load_joined_model
from components.common.storage import atomic_files
from components.evaluate import core as evaluate_core
from components.evaluate.blessing import BlessingPolicy
from components.extract_features import core as extract_core
from components.fine_tune import core as fine_tune_core
from components.push import core as push_core
from components.train_head import core as train_core
from components.transfer_lift import core as lift_core
from tests.conftest import REPO_ROOT
from tests.unit.helpers import IMAGE_SIZE

REFUSED = "Lambda layer"


@pytest.fixture(scope="module")
def planted(trained, tmp_path_factory):
    """A saved extractor holding a Lambda layer, its info file saying `trusted: true`, and a head for it."""
    import keras

    tmp_path = tmp_path_factory.mktemp("planted")
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    scaled = keras.layers.Lambda(lambda pixels: pixels / 255.0)(images)  # arbitrary Python, saved as bytecode
    source = str(tmp_path / "lambda_base.keras")
    keras.Model(images, keras.layers.Conv2D(2, 3)(scaled)).save(source)
    spec = BaseNetworkSpec(base_model=source, image_size=IMAGE_SIZE, trust_base_model=True)
    extract_core.run(examples_dir=trained["examples_dir"], features_dir=str(tmp_path / "features"),
                     base_model_dir=str(tmp_path / "base"), spec=spec)
    info_path = str(tmp_path / "base" / BASE_NETWORK_INFO)
    atomic_files.write_json(info_path, {**atomic_files.read_json(info_path), "trust_base_model": True})
    head = train_core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                          config=HeadConfig(epochs=1))
    return {"examples_dir": trained["examples_dir"],
            "base_model_path": str(tmp_path / "base" / BASE_MODEL_FILE),
            "head_model_path": head.head_model_path}


def test_loading_the_base_takes_trust_from_the_caller_not_the_file(planted):
    with pytest.raises(ValueError, match=REFUSED):
        load_saved_model(planted["base_model_path"])
    with pytest.raises(ValueError, match=REFUSED):
        load_joined_model(planted["base_model_path"], planted["head_model_path"])

    assert load_saved_model(planted["base_model_path"], trusted=True).output_shape == (None, 2)
    joined = load_joined_model(planted["base_model_path"], planted["head_model_path"], trusted=True)
    assert joined.input_shape == (None, IMAGE_SIZE, IMAGE_SIZE, 3)


def evaluate(planted, output_dir, **trust):
    # No features directory: the joined model runs, as it does after fine-tuning.
    return evaluate_core.run(examples_dir=planted["examples_dir"], base_model_path=planted["base_model_path"],
                             head_model_path=planted["head_model_path"], output_dir=str(output_dir),
                             policy=BlessingPolicy(accuracy_threshold=0.0), **trust)


def push(planted, evaluation_dir, tmp_path, **trust):
    return push_core.run(evaluation_dir=str(evaluation_dir), examples_dir=planted["examples_dir"],
                         base_model_path=planted["base_model_path"], head_model_path=planted["head_model_path"],
                         serving_root=str(tmp_path / "serving"), model_name="colors",
                         output_dir=str(tmp_path / "push"), **trust)


def fine_tune(planted, tmp_path, **trust):
    return fine_tune_core.run(examples_dir=planted["examples_dir"], base_model_path=planted["base_model_path"],
                              head_model_path=planted["head_model_path"], base_output_dir=str(tmp_path / "tuned_base"),
                              head_output_dir=str(tmp_path / "tuned_head"),
                              config=fine_tune_core.FineTuneConfig(fine_tune_mode="on", fine_tune_epochs=1), **trust)


def transfer_lift(planted, tmp_path, **trust):
    return lift_core.run(examples_dir=planted["examples_dir"],
                         base_model_path=planted["base_model_path"],
                         head_config=HeadConfig(epochs=1), output_dir=str(tmp_path / "lift"), **trust)


def test_evaluate_and_push_refuse_the_planted_base_unless_the_run_trusts_it(planted, tmp_path):
    with pytest.raises(ValueError, match=REFUSED):
        evaluate(planted, tmp_path / "refused")
    evaluation_dir = tmp_path / "evaluation"
    assert evaluate(planted, evaluation_dir, trust_base_model=True).blessed

    with pytest.raises(ValueError, match=REFUSED):
        push(planted, evaluation_dir, tmp_path)
    assert push(planted, evaluation_dir, tmp_path, trust_base_model=True).pushed


def test_fine_tune_refuses_the_planted_base_unless_the_run_trusts_it(planted, tmp_path):
    with pytest.raises(ValueError, match=REFUSED):
        fine_tune(planted, tmp_path)
    assert fine_tune(planted, tmp_path, trust_base_model=True).ran


def test_transfer_lift_refuses_the_planted_base_unless_the_run_trusts_it(planted, tmp_path):
    with pytest.raises(ValueError, match=REFUSED):
        transfer_lift(planted, tmp_path)
    assert 0 <= transfer_lift(planted, tmp_path, trust_base_model=True).random_accuracy <= 1


# The last Keras release each published advisory affects (safe-mode bypasses and the loading
# path's file handling), and the hardening of `.keras` extraction that only 3.15.1 has on 3.13+.
AFFECTED_KERAS = {
    "CVE-2025-1550": "3.8.0",
    "CVE-2025-8747, CVE-2025-9906": "3.10.0",
    "CVE-2025-9905, CVE-2025-49655": "3.11.2",
    "CVE-2025-12058, CVE-2025-12060": "3.11.3",
    "CVE-2026-0897, CVE-2026-1462": "3.13.1",
    "GHSA-hqp4-2352-xf5r": "3.13.2",
    "decompression bombs and H5 group traversal in .keras loading": "3.15.0",
}


def test_the_keras_requirement_excludes_releases_with_published_safe_mode_bypasses():
    setup = (REPO_ROOT / "setup.py").read_text(encoding="utf-8")
    keras_requirement = Requirement(re.search(r'"(keras[<>=!~][^"]*)"', setup).group(1))
    for advisories, release in AFFECTED_KERAS.items():
        assert release not in keras_requirement.specifier, advisories
    assert metadata.version("keras") in keras_requirement.specifier
