"""The base network: a keras.applications model by name, or a user's own `.keras` model.

Whatever its origin, the base is wrapped into a feature extractor that takes RGB images with
values in [0, 255] (as float32) and returns one feature vector per image. The network's own
`preprocess_input` lives inside that model, so whoever holds the saved extractor (evaluate, push,
the serving model) cannot forget it.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass

import keras

from components.common import gcs

logger = logging.getLogger(__name__)

# name -> (constructor, preprocess_input module, takes alpha)
APPLICATIONS = {
    "mobilenet": ("MobileNet", "mobilenet", True),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", True),
    "vgg16": ("VGG16", "vgg16", False),
    "resnet50": ("ResNet50", "resnet50", False),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet", False),
}
POOLINGS = ("avg", "flatten")
# base_weights values that name no file: keras.applications' own weights, or random ones.
WEIGHTS_KEYWORDS = ("imagenet", "none")
# The smallest input side keras.applications accepts for these families with include_top=False.
MIN_IMAGE_SIZE = 32


@keras.saving.register_keras_serializable(package="headstart")
class ApplicationPreprocess(keras.layers.Layer):
    """Applies a keras.applications family's `preprocess_input` inside the model."""

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        self.module = module

    def call(self, inputs):
        preprocess_input = getattr(keras.applications, self.module).preprocess_input
        return preprocess_input(inputs)

    def get_config(self):
        return {**super().get_config(), "module": self.module}


@dataclass(frozen=True)
class BaseNetworkSpec:
    """Which base network to build.

    Attributes:
        name: a keras.applications name (see APPLICATIONS) or a path to a `.keras` model.
        weights: `imagenet`, `none`, or a path to a weights file. A `.keras` model keeps its own
            weights for `imagenet`; a path loads those weights into it.
        alpha: width multiplier, MobileNets only.
        image_size: side of the square input images.
        pooling: `avg` (global average pooling) or `flatten` (the classic recipe).
        trusted: load a `.keras` model without Keras safe mode, so its Lambda layers (arbitrary
            Python code) run. Only for a file you made or trust (`--trust-base-model`).
    """

    name: str = "mobilenet"
    weights: str = "imagenet"
    alpha: float = 1.0
    image_size: int = 224
    pooling: str = "avg"
    trusted: bool = False

    def __post_init__(self):
        if not self.is_user_model and self.name not in APPLICATIONS:
            raise ValueError(
                f"base_model {self.name!r} is neither a .keras file nor one of {sorted(APPLICATIONS)}"
            )
        if self.is_user_model and self.weights == "none":
            raise ValueError("base_weights 'none' applies to keras.applications bases, not a .keras model")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if not self.is_user_model and self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"image_size {self.image_size} is too small for {self.name} "
                f"(at least {MIN_IMAGE_SIZE})"
            )

    @property
    def is_user_model(self) -> bool:
        return self.name.endswith(".keras")

    @property
    def weights_file(self) -> str | None:
        """The weights file this spec loads, or None for `imagenet` and `none`."""
        return None if self.weights in WEIGHTS_KEYWORDS else self.weights

    def missing_files(self) -> list[str]:
        """What this spec names on this machine that is not there, as messages naming the parameter.

        gs:// URIs are not looked at here: they are fetched when the network is built.
        """
        missing = []
        if self.is_user_model and not gcs.is_gcs(self.name) and not os.path.exists(self.name):
            missing.append(f"base_model {self.name!r}: no such .keras file")
        weights = self.weights_file
        if weights and not gcs.is_gcs(weights) and not os.path.exists(weights):
            missing.append(f"base_weights {weights!r}: not 'imagenet', 'none' or an existing file")
        return missing

    def localized(self, directory: str) -> "BaseNetworkSpec":
        """This spec with its gs:// model and weights files downloaded into `directory`."""
        def local_copy(uri: str) -> str:
            if not gcs.is_gcs(uri):
                return uri
            path = os.path.join(directory, uri.rstrip("/").rsplit("/", 1)[-1])
            gcs.download_file(uri, path)
            logger.info("base network: fetched %s", uri)
            return path

        weights = self.weights_file
        return dataclasses.replace(self, name=local_copy(self.name) if self.is_user_model else self.name,
                                   weights=local_copy(weights) if weights else self.weights)


def _pool(features, pooling: str):
    if len(features.shape) == 2:
        return features
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="pool")(features)
    return keras.layers.Flatten(name="pool")(features)


def _application(spec: BaseNetworkSpec, images):
    constructor, module, takes_alpha = APPLICATIONS[spec.name]
    kwargs = {"alpha": spec.alpha} if takes_alpha else {}
    weights = None if spec.weights == "none" else spec.weights
    network = getattr(keras.applications, constructor)(
        include_top=False, weights=weights, input_shape=(spec.image_size, spec.image_size, 3), **kwargs
    )
    preprocessed = ApplicationPreprocess(module, name="preprocess_input")(images)
    return network(preprocessed, training=False)


def load_saved_model(path: str, trusted: bool = False) -> keras.Model:
    """Loads a .keras file; in safe mode unless trusted, naming the way out when safe mode refuses."""
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not trusted)
    except ValueError as error:
        if "safe_mode" not in str(error) and "unsafe" not in str(error).lower():
            raise
        raise ValueError(f"{path} holds code (a Lambda layer) that Keras safe mode will not run; if you made "
                         "this file or trust it, pass --trust-base-model") from error


def load_base(base_model_path: str, trusted: bool = False) -> keras.Model:
    """Loads a saved feature extractor, in Keras safe mode unless this run trusts its base.

    Args:
        base_model_path: the `.keras` file extract_features saved.
        trusted: the run's own `trust_base_model`. Nothing stored beside the model decides it, as
            a shared cache or pipeline root may be writable by others.
    """
    return load_saved_model(base_model_path, trusted)


def _user_model(spec: BaseNetworkSpec, images):
    # Safe mode: a Lambda layer in someone's .keras file does not get to run arbitrary code.
    network = load_saved_model(spec.name, spec.trusted)
    expected = tuple(network.input_shape[1:3])
    if None not in expected and expected != (spec.image_size, spec.image_size):
        raise ValueError(
            f"base_model {spec.name} takes {expected[0]}x{expected[1]} images but image_size is "
            f"{spec.image_size}; pass --image-size {expected[0]}"
        )
    if spec.weights not in WEIGHTS_KEYWORDS:
        network.load_weights(spec.weights)
    return network(images, training=False)


def build_feature_extractor(spec: BaseNetworkSpec) -> keras.Model:
    """Builds the frozen feature extractor for a spec whose files are on this machine.

    Returns:
        A model from float32 images (N, S, S, 3) in [0, 255] to features (N, dim).

    Raises:
        ValueError: a model or weights file the spec names is not there.
    """
    missing = spec.missing_files()
    if missing:
        raise ValueError("; ".join(missing))
    images = keras.Input(shape=(spec.image_size, spec.image_size, 3), name="image")
    features = _user_model(spec, images) if spec.is_user_model else _application(spec, images)
    extractor = keras.Model(images, _pool(features, spec.pooling), name="feature_extractor")
    extractor.trainable = False
    weights = "its own weights" if spec.is_user_model and spec.weights == "imagenet" else f"weights {spec.weights}"
    logger.info(
        "base network: %s (%s), %d parameters, %d features per image",
        spec.name, weights, extractor.count_params(), extractor.output_shape[-1],
    )
    return extractor
