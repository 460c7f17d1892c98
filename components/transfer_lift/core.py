"""Transfer lift core: what the pretrained weights are worth, measured on the user's own data.

The base network's architecture is cloned with fresh random weights, its features are extracted
for every split, and the same head is trained on them with the same settings. Its test accuracy
beside the pretrained model's is the claim transfer learning rests on.

Output directory layout (lift):
    lift.json   {"measured": bool, "random_accuracy": float, "weights": the pretrained weights}
"""

import logging
import os
import tempfile
from dataclasses import dataclass

import keras

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import BASE_NETWORK_INFO, LIFT
from components.common.model.base_network import load_saved_model
from components.common.model.feature_writing import write_features
from components.common.model.head_training import train
from components.common.model.modeling import head_predictions
from components.common.storage import atomic_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiftResult:
    """The random-weights baseline's test accuracy."""

    random_accuracy: float


def _test_accuracy(features_dir: str, head_model_path: str) -> float:
    label_indices, probabilities = head_predictions(features_dir, head_model_path, "test")
    return float((probabilities.argmax(axis=1) == label_indices).mean())


def run(*, examples_dir: str, base_model_path: str, head_config: HeadConfig, output_dir: str,
        batch_size: int = HeadConfig.batch_size, trust_base_model: bool = False) -> LiftResult:
    """Trains the head on random-weight features and writes its test accuracy.

    `trust_base_model`, the run's own trust in its base, loads the saved base outside Keras safe
    mode and lets its random-weight copy be rebuilt the same way.
    """
    os.makedirs(output_dir, exist_ok=True)
    base_info = atomic_files.read_json(os.path.join(os.path.dirname(base_model_path), BASE_NETWORK_INFO))
    base = load_saved_model(base_model_path, trust_base_model)
    keras.utils.set_random_seed(head_config.seed)
    # Rebuilding every layer from its config gives the same architecture, freshly initialized. A
    # Lambda layer is deserialized again there, so the rebuild needs the same trust as the load
    # (keras.models.clone_model would rebuild it in safe mode whatever the load allowed).
    random_base = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(base),
                                                        safe_mode=not trust_base_model)
    random_base.trainable = False
    with tempfile.TemporaryDirectory(dir=output_dir) as work:
        features_dir, head_dir = os.path.join(work, "features"), os.path.join(work, "head")
        write_features(random_base, examples_dir, features_dir, batch_size, {"base_model": "random"})
        trained = train(features_dir=features_dir, head_model_dir=head_dir, config=head_config)
        accuracy = _test_accuracy(features_dir, trained.head_model_path)
    atomic_files.write_json(os.path.join(output_dir, LIFT),
                            {"measured": True, "random_accuracy": accuracy, "weights": base_info.get("base_weights")})
    logger.info("transfer_lift: the same head on random-weight features: test accuracy %.4f", accuracy)
    return LiftResult(accuracy)
