"""Evaluate's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

import os

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache
from components.evaluate.champion import find_champion


def execute(*, examples, features, base_network, head, lift, audit, accuracy_threshold: float, auc_threshold: float,
            champion_tolerance: float, max_test_interval: float, bless_small_test_set: bool, serving_root: str,
            model_name: str, run_id: str, batch_size: int, trust_base_model: bool, test_time_augmentation: bool,
            cache_root: str, use_cache: bool, evaluation, metrics, classification_metrics, report) -> None:
    """Scores the model on the test split against the champion and decides the blessing."""
    prepare_step_process(evaluation, keep_scikit_learn=True)  # the metrics use scikit-learn
    champion = find_champion(serving_root, model_name, step_cache.joined_key(base_network.path, head.path))
    # Not in the key: run_id names the run that made the report, and a reused one names the run
    # that made it first.
    cache = step_cache.open_step(
        cache_root, "evaluate", use_cache=use_cache,
        params={"accuracy_threshold": accuracy_threshold, "auc_threshold": auc_threshold,
                "champion_tolerance": champion_tolerance, "max_test_interval": max_test_interval,
                "bless_small_test_set": bless_small_test_set, "serving_root": serving_root, "model_name": model_name,
                "batch_size": batch_size, "trust_base_model": trust_base_model,
                "test_time_augmentation": test_time_augmentation},
        inputs={"examples": examples, "features": features, "base_network": base_network, "head": head,
                "lift": lift, "audit": audit},
        outputs={"evaluation": evaluation, "metrics": metrics, "classification_metrics": classification_metrics,
                 "report": report},
        force_run=champion.must_rescore,
    )
    if cache.restore():
        from components.evaluate.blessing import redecide_reused

        blessed, reason = redecide_reused(evaluation.path, champion.same_model_dir)
        evaluation.metadata.update({"blessed": blessed, "reason": reason,
                                    "champion_version": champion.same_model_version})
        return
    from components.common.config.view_policy import views_to_average
    from components.common.contract.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE
    from components.evaluate import core
    from components.evaluate.blessing import BlessingPolicy
    from components.evaluate.kfp_metrics import log_to_kfp

    result = core.run(
        examples_dir=examples.path, base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
        head_model_path=os.path.join(head.path, HEAD_MODEL_FILE), output_dir=evaluation.path,
        policy=BlessingPolicy(accuracy_threshold, auc_threshold, champion_tolerance, max_test_interval,
                              bless_small_test_set),
        serving_root=serving_root, model_name=model_name, lift_dir=lift.path, audit_dir=audit.path,
        report_path=report.path,
        batch_size=batch_size, features_dir=features.path, trust_base_model=trust_base_model,
        views=views_to_average(test_time_augmentation, features.path), run_id=run_id,
    )
    log_to_kfp(result, metrics, classification_metrics)
    evaluation.metadata.update({"blessed": result.blessed, "reason": result.reason,
                                "champion_version": result.champion["version"] if result.champion else None})
    cache.save()
