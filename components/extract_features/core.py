"""Extract features core: build the frozen base network, save it, and write every image's features.

Output directories: the features (see `components.common.model.feature_writing`), and the base network
saved as `base.keras` in its own model directory with `base_network.json` (its spec, feature size
and parameter count).
"""

import hashlib
import logging
import os
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from components.common.config.head_config import HeadConfig
from components.common.config.requested_gpus import check_requested_gpus
from components.common.config.view_policy import ViewPolicy
from components.common.contract import examples_info
from components.common.contract.artifact_files import BASE_MODEL_FILE, BASE_NETWORK_INFO
from components.common.model.base_network import BaseNetworkSpec, build_feature_extractor
from components.common.model.feature_store import FeatureStore
from components.common.model.feature_writing import CALLS_IN_FLIGHT, write_features
from components.common.runtime.call_threads import share_cores_between_calls
from components.common.storage import atomic_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractResult:
    """What feature extraction produced."""

    dim: int
    counts: dict[str, int]
    extracted: int


def weights_digest(model) -> str:
    """A digest of a network's weights, in order: equal only for the same numbers."""
    hasher = hashlib.sha256()
    for weight in model.weights:
        hasher.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return hasher.hexdigest()


def run(*, examples_dir: str, features_dir: str, base_model_dir: str, spec: BaseNetworkSpec,
        batch_size: int = HeadConfig.batch_size, store_dir: str = "", reuse_features: bool = True,
        views: ViewPolicy = ViewPolicy(augment_views=1, test_time_augmentation=False)) -> ExtractResult:
    """Builds the base network, saves it, and writes the feature vectors of every split.

    Args:
        examples_dir: preprocess's output directory.
        features_dir: the features artifact directory to fill.
        base_model_dir: the base model artifact directory; `base.keras` is written there.
        spec: which base network, weights, input size and pooling.
        batch_size: images read at a time; the base runs on each batch in CALLS_IN_FLIGHT parts at once.
        store_dir: the feature store for this base, weights, image size and preprocessing; vectors
            of images seen before are taken from it and new ones added. "" for no store.
        reuse_features: False to run the base over every image even if the store has it.
        views: the augmented views of training images to extract, and whether test images get them
            too (test-time augmentation); by default the images alone.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    check_requested_gpus("extract-features")
    threads = share_cores_between_calls(CALLS_IN_FLIGHT)
    if threads:
        logger.info("extract_features: %d base network calls at once; TensorFlow threads per call: %d",
                    CALLS_IN_FLIGHT, threads)
    resized_to = examples_info.read_stats(examples_dir).image_size
    if resized_to != spec.image_size:
        raise ValueError(f"examples were resized to {resized_to} but the base network takes {spec.image_size}")
    with tempfile.TemporaryDirectory(prefix="headstart-base-") as fetched:
        extractor = build_feature_extractor(spec.localized(fetched))
    os.makedirs(base_model_dir, exist_ok=True)
    base_model_path = os.path.join(base_model_dir, BASE_MODEL_FILE)
    with atomic_files.atomic_path(base_model_path) as tmp_path:
        extractor.save(tmp_path)
    dim = int(extractor.output_shape[-1])
    atomic_files.write_json(os.path.join(base_model_dir, BASE_NETWORK_INFO),
                            {**asdict(spec), "dim": dim, "parameters": int(extractor.count_params())})

    if store_dir and spec.base_weights == "none":
        # A random base is drawn afresh on every build: vectors of two draws must never mix.
        store_dir = f"{store_dir}-weights-{weights_digest(extractor)[:16]}"
    store = FeatureStore(store_dir, ignore_existing=not reuse_features) if store_dir else None
    written = write_features(extractor, examples_dir, features_dir, batch_size,
                             {"base_model": asdict(spec)}, store, views.train_views, views.test_views)
    return ExtractResult(dim, written.counts, written.extracted)
