"""KFP component for feature extraction: maps artifacts to `components.extract_features.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def extract_features(
    examples: Input[Dataset],
    base_model: str,
    base_weights: str,
    alpha: float,
    image_size: int,
    pooling: str,
    batch_size: int,
    features: Output[Dataset],
    base_network: Output[Model],
):
    """Runs the frozen base network once over every split and saves it for evaluate and push."""
    from components.common.logs import setup_step_logging

    setup_step_logging()
    from components.extract_features import core
    from components.extract_features.base_network import BaseNetworkSpec

    spec = BaseNetworkSpec(name=base_model, weights=base_weights, alpha=alpha, image_size=image_size, pooling=pooling)
    result = core.run(
        examples_dir=examples.path, features_dir=features.path, base_model_dir=base_network.path,
        spec=spec, batch_size=batch_size,
    )
    features.metadata.update({"base_model": base_model, "dim": result.dim, "count": sum(result.counts.values()),
                              "counts": result.counts})
    base_network.metadata.update({"base_model": base_model, "weights": base_weights, "image_size": image_size,
                                  "pooling": pooling, "dim": result.dim})
