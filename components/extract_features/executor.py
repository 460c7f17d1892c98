"""Extract-features' executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, examples, base_model: str, base_weights: str, alpha: float, image_size: int, pooling: str,
            batch_size: int, trust_base_model: bool, augment_views: int, test_time_augmentation: bool,
            test_time_views: int, cache_root: str, use_cache: bool, features, base_network) -> None:
    """Runs the frozen base network over every image it has not seen, unless the cache holds the step."""
    prepare_step_process(features)
    cache = step_cache.open_step(
        cache_root, "extract-features", use_cache=use_cache,
        params={"base_model": base_model, "base_weights": base_weights, "alpha": alpha, "image_size": image_size,
                "pooling": pooling, "batch_size": batch_size, "trust_base_model": trust_base_model,
                "augment_views": augment_views, "test_time_augmentation": test_time_augmentation,
                "test_time_views": test_time_views},
        inputs={"examples": examples}, outputs={"features": features, "base_network": base_network},
        extra={"base_model": step_cache.path_digest(base_model), "base_weights": step_cache.path_digest(base_weights)},
    )
    if cache.restore():
        return
    from components.common.config.base_network_spec import BaseNetworkSpec
    from components.common.config.view_policy import ViewPolicy
    from components.extract_features import core

    # Vectors depend on everything in the key but the examples, the batch size and which views are
    # asked for (each view has its own store key): images seen before under the same base,
    # weights, size and code are looked up, not recomputed.
    store_key = cache.key_without("input:examples", "param:batch_size", "param:augment_views",
                                  "param:test_time_augmentation", "param:test_time_views")
    spec = BaseNetworkSpec(base_model=base_model, base_weights=base_weights, alpha=alpha, image_size=image_size,
                           pooling=pooling, trust_base_model=trust_base_model)
    result = core.run(
        examples_dir=examples.path, features_dir=features.path, base_model_dir=base_network.path, spec=spec,
        batch_size=batch_size,
        store_dir=step_cache.cache_location(cache_root, "features", store_key) if cache_root else "",
        reuse_features=use_cache, views=ViewPolicy(augment_views, test_time_augmentation, test_time_views),
    )
    features.metadata.update({"base_model": base_model, "dim": result.dim, "count": sum(result.counts.values()),
                              "counts": result.counts, "extracted": result.extracted})
    base_network.metadata.update({"base_model": base_model, "weights": base_weights, "image_size": image_size,
                                  "pooling": pooling, "dim": result.dim})
    cache.save()
