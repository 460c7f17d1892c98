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
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    features: Output[Dataset],
    base_network: Output[Model],
):
    """Runs the frozen base network once over every new image and saves it for evaluate and push."""
    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    cache = step_cache.open_step(
        cache_root, "extract-features",
        params={"base_model": base_model, "base_weights": base_weights, "alpha": alpha, "image_size": image_size,
                "pooling": pooling, "batch_size": batch_size, "trust_base_model": trust_base_model},
        inputs={"examples": examples}, outputs={"features": features, "base_network": base_network},
        extra={"base_model": step_cache.path_digest(base_model), "base_weights": step_cache.path_digest(base_weights)},
        use_cache=use_cache,
    )
    if cache.restore():
        return
    from components.extract_features import core
    from components.common.base_network import BaseNetworkSpec

    # Vectors depend on everything in the key but the examples and the batch size: images seen
    # before under the same base, weights, size and code are looked up, not recomputed.
    store_key = cache.key_without("input:examples", "param:batch_size")
    spec = BaseNetworkSpec(name=base_model, weights=base_weights, alpha=alpha, image_size=image_size, pooling=pooling,
                           trusted=trust_base_model)
    result = core.run(
        examples_dir=examples.path, features_dir=features.path, base_model_dir=base_network.path, spec=spec,
        batch_size=batch_size,
        store_dir=step_cache.cache_location(cache_root, "features", store_key) if cache_root else "",
        reuse_features=use_cache,
    )
    features.metadata.update({"base_model": base_model, "dim": result.dim, "count": sum(result.counts.values()),
                              "counts": result.counts, "extracted": result.extracted})
    base_network.metadata.update({"base_model": base_model, "weights": base_weights, "image_size": image_size,
                                  "pooling": pooling, "dim": result.dim})
    cache.save()
