"""Which base network a run uses: the spec, validated without importing TensorFlow.

The CLI, the pipeline's parameters and the steps all read its defaults and help from here;
`components.common.model.base_network` builds the network it describes.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass

from components.common.config.knobs import knob
from components.common.storage import gcs

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


@dataclass(frozen=True)
class BaseNetworkSpec:
    """Which base network to build.

    Each field's help says what it holds. A `.keras` base keeps its own weights for `imagenet`; a
    weights file is loaded into it.
    """

    base_model: str = knob("mobilenet", f"the base network: a keras.applications name ({', '.join(APPLICATIONS)}) "
                           "or a .keras file")
    base_weights: str = knob("imagenet", "the base's weights: imagenet, none (random), or a weights file")
    alpha: float = knob(1.0, "MobileNet width multiplier")
    image_size: int = knob(224, "side in pixels of the square images the base network takes")
    pooling: str = knob("avg", "how the base's feature map becomes a vector: avg (global average pooling) or "
                        "flatten", choices=POOLINGS)
    trust_base_model: bool = knob(False, "load a .keras base model without Keras safe mode, so code in its "
                                  "Lambda layers runs: only for a file you made or trust")

    def __post_init__(self):
        if not self.is_user_model and self.base_model not in APPLICATIONS:
            raise ValueError(
                f"base_model {self.base_model!r} is neither a .keras file nor one of {sorted(APPLICATIONS)}"
            )
        if self.is_user_model and self.base_weights == "none":
            raise ValueError("base_weights 'none' applies to keras.applications bases, not a .keras model")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if not self.is_user_model and self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"image_size {self.image_size} is too small for {self.base_model} "
                f"(at least {MIN_IMAGE_SIZE})"
            )

    @property
    def is_user_model(self) -> bool:
        """Whether `base_model` names a user's own `.keras` file rather than a keras.applications model."""
        return self.base_model.endswith(".keras")

    @property
    def weights_file(self) -> str | None:
        """The weights file this spec loads, or None for `imagenet` and `none`."""
        return None if self.base_weights in WEIGHTS_KEYWORDS else self.base_weights

    def missing_files(self) -> list[str]:
        """What this spec names on this machine that is not there, as messages naming the parameter.

        gs:// URIs are not looked at here: they are fetched when the network is built.
        """
        missing = []
        if self.is_user_model and not gcs.is_gcs(self.base_model) and not os.path.exists(self.base_model):
            missing.append(f"base_model {self.base_model!r}: no such .keras file")
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
        return dataclasses.replace(self,
                                   base_model=local_copy(self.base_model) if self.is_user_model else self.base_model,
                                   base_weights=local_copy(weights) if weights else self.base_weights)
