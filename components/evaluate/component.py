"""KFP component for evaluation: maps artifacts to `components.evaluate.core.run`."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    examples: Input[Dataset],
    features: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    lift: Input[Artifact],
    accuracy_threshold: float,
    auc_threshold: float,
    champion_tolerance: float,
    serving_root: str,
    model_name: str,
    batch_size: int,
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
):
    """Evaluates base + head on the test split against the champion and decides the blessing."""
    import math
    import os

    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.logs import setup_step_logging
    from components.common.serving_layout import latest_version_dir, serving_same_model

    setup_step_logging()
    exit_fast_once_output_written()
    # The stored evaluation is the challenger's own: with no champion, or when the champion is
    # this very model, it is reused and only the blessing decided again. Another model in serving
    # must be scored on this test split, so the step runs (and stores its result for next time).
    model_key = step_cache.joined_key(base_network.path, head.path)
    champion_dir = latest_version_dir(serving_root, model_name) if serving_root and model_name else None
    same_model = serving_same_model(serving_root, model_name, model_key)
    other_champion = champion_dir is not None and not same_model
    cache = step_cache.open_step(
        cache_root, "evaluate",
        params={"accuracy_threshold": accuracy_threshold, "auc_threshold": auc_threshold,
                "champion_tolerance": champion_tolerance, "serving_root": serving_root, "model_name": model_name,
                "batch_size": batch_size, "trust_base_model": trust_base_model},
        inputs={"examples": examples, "features": features, "base_network": base_network, "head": head,
                "lift": lift},
        outputs={"evaluation": evaluation, "metrics": metrics, "classification_metrics": classification_metrics,
                 "report": report},
        use_cache=use_cache,
        force_run=f"another model is serving ({champion_dir}): it is scored on this test split"
        if other_champion else None,
    )
    if cache.restore():
        from components.evaluate.blessing import redecide_reused

        blessed, reason = redecide_reused(evaluation.path, same_model)
        evaluation.metadata.update({"blessed": blessed, "reason": reason,
                                    "champion_version": int(os.path.basename(same_model)) if same_model else None})
        return
    from components.evaluate import core
    from components.evaluate.blessing import BlessingPolicy
    from components.common.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE

    result = core.run(
        examples_dir=examples.path, base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
        head_model_path=os.path.join(head.path, HEAD_MODEL_FILE), output_dir=evaluation.path,
        policy=BlessingPolicy(accuracy_threshold, auc_threshold, champion_tolerance),
        serving_root=serving_root, model_name=model_name, lift_dir=lift.path, report_path=report.path,
        batch_size=batch_size, features_dir=features.path, trust_base_model=trust_base_model,
    )
    found = result.metrics
    scalars = {"accuracy": found["accuracy"], "accuracy_ci95_low": found["accuracy_ci95"][0],
               "accuracy_ci95_high": found["accuracy_ci95"][1], "auc": found["auc"], "log_loss": found["log_loss"],
               "precision": found["precision"], "recall": found["recall"], "ece": found["ece"]}
    if "transfer_lift" in found:
        scalars["random_base_accuracy"] = found["transfer_lift"]["random_accuracy"]
        scalars["transfer_lift"] = found["transfer_lift"]["lift"]
    for name, value in scalars.items():
        if not math.isnan(value):
            metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(list(result.labels), found["confusion_matrix"])
    if found["roc"]:
        classification_metrics.log_roc_curve(found["roc"]["fpr"], found["roc"]["tpr"], found["roc"]["thresholds"])
    evaluation.metadata.update({"blessed": result.blessed, "reason": result.reason,
                                "champion_version": result.champion["version"] if result.champion else None})
    cache.save()
