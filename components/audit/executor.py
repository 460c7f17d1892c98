"""The audit's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, examples, features, audit_top: int, cache_root: str, use_cache: bool, audit) -> None:
    """Audits the images behind `features` into `audit`, unless the cache holds it."""
    # scikit-learn fits the out-of-fold classifier.
    prepare_step_process(audit, keep_scikit_learn=True)
    cache = step_cache.open_step(
        cache_root, "audit-data", use_cache=use_cache, params={"audit_top": audit_top},
        inputs={"examples": examples, "features": features}, outputs={"audit": audit},
    )
    if cache.restore():
        return
    from components.audit import core

    result = core.run(features_dir=features.path, examples_dir=examples.path, output_dir=audit.path, top=audit_top)
    audit.metadata.update({"images": result["images"], "flagged_mislabeled": result["flagged_mislabeled"],
                           "near_duplicate_pairs": len(result["near_duplicates"])})
    cache.save()
