"""The base network: a keras.applications model by name, or a user's own `.keras` model.

Whatever its origin, the base is wrapped into a feature extractor that takes RGB images with
values in [0, 255] (as float32) and returns one feature vector per image. The network's own
`preprocess_input` lives inside that model, so whoever holds the saved extractor (evaluate, push,
the serving model) cannot forget it.
"""

import logging

import keras

from components.common.config.base_network_spec import APPLICATIONS, WEIGHTS_KEYWORDS, BaseNetworkSpec

logger = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="headstart")
class ApplicationPreprocess(keras.layers.Layer):
    """Applies a keras.applications family's `preprocess_input` inside the model."""

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        self.module = module

    def call(self, inputs):
        """The family's `preprocess_input` applied to a batch of images with values in [0, 255]."""
        preprocess_input = getattr(keras.applications, self.module).preprocess_input
        return preprocess_input(inputs)

    def get_config(self):
        """The layer's config with its module, so a saved model rebuilds the same preprocessing."""
        return {**super().get_config(), "module": self.module}


def _pool(features, pooling: str):
    if len(features.shape) == 2:
        return features
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="pool")(features)
    return keras.layers.Flatten(name="pool")(features)


def _application(spec: BaseNetworkSpec, images):
    constructor, module, takes_alpha = APPLICATIONS[spec.base_model]
    kwargs = {"alpha": spec.alpha} if takes_alpha else {}
    weights = None if spec.base_weights == "none" else spec.base_weights
    try:
        network = getattr(keras.applications, constructor)(
            include_top=False, weights=weights, input_shape=(spec.image_size, spec.image_size, 3), **kwargs
        )
    except Exception as error:  # Keras raises a bare Exception for a failed download
        if weights != "imagenet" or not _is_download_failure(error):
            raise
        raise ValueError(
            f"the ImageNet weights of {spec.base_model} could not be downloaded ({error}). Without the network, "
            "pass --base-weights FILE: the same network's weights without its top, as the Keras .h5 file "
            "keras.applications downloads (for MobileNet alpha 0.25 at 224 pixels, mobilenet_2_5_224_tf_no_top.h5; "
            "a machine that has run it once keeps it in ~/.keras/models/), or --base-weights none for random "
            "weights") from error
    preprocessed = ApplicationPreprocess(module, name="preprocess_input")(images)
    return network(preprocessed, training=False)


def _is_download_failure(error: Exception) -> bool:
    """Whether keras.applications failed to fetch its weights (offline, a proxy, a refused host)."""
    import urllib.error

    return isinstance(error, (urllib.error.URLError, ConnectionError)) or "URL fetch failure" in str(error)


def load_saved_model(path: str, trusted: bool = False) -> keras.Model:
    """Loads a .keras file (a user's base, or the one extract_features saved), in Keras safe mode unless trusted.

    Args:
        path: the `.keras` file.
        trusted: the run's own `trust_base_model`. Nothing stored beside the model decides it, as
            a shared cache or pipeline root may be writable by others.

    Raises:
        ValueError: safe mode refused the file; the message names the way out.
    """
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not trusted)
    except ValueError as error:
        if "safe_mode" not in str(error) and "unsafe" not in str(error).lower():
            raise
        raise ValueError(f"{path} holds code (a Lambda layer) that Keras safe mode will not run; if you made "
                         "this file or trust it, pass --trust-base-model") from error


def _user_model(spec: BaseNetworkSpec, images):
    # Safe mode: a Lambda layer in someone's .keras file does not get to run arbitrary code.
    network = load_saved_model(spec.base_model, spec.trust_base_model)
    expected = tuple(network.input_shape[1:3])
    if None not in expected and expected != (spec.image_size, spec.image_size):
        raise ValueError(
            f"base_model {spec.base_model} takes {expected[0]}x{expected[1]} images but image_size is "
            f"{spec.image_size}; pass --image-size {expected[0]}"
        )
    if spec.base_weights not in WEIGHTS_KEYWORDS:
        network.load_weights(spec.base_weights)
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
    own_weights = spec.is_user_model and spec.base_weights == "imagenet"
    weights = "its own weights" if own_weights else f"weights {spec.base_weights}"
    logger.info(
        "base network: %s (%s), %d parameters, %d features per image",
        spec.base_model, weights, extractor.count_params(), extractor.output_shape[-1],
    )
    return extractor
