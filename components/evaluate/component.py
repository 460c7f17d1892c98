"""KFP component for evaluation: maps artifacts to `components.evaluate.core.run`."""

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    accuracy_threshold: float,
    batch_size: int,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
):
    """Evaluates base + head on the test split and decides the blessing."""
    import math
    import os

    from components.common.logs import setup_step_logging

    setup_step_logging()
    from components.evaluate import core
    from components.extract_features.core import BASE_MODEL_FILE
    from components.train_head.core import HEAD_MODEL_FILE

    result = core.run(
        examples_dir=examples.path, base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
        head_model_path=os.path.join(head.path, HEAD_MODEL_FILE), output_dir=evaluation.path,
        accuracy_threshold=accuracy_threshold, batch_size=batch_size,
    )
    for name in ("accuracy", "auc", "precision", "recall"):
        if not math.isnan(result.metrics[name]):
            metrics.log_metric(name, result.metrics[name])
    classification_metrics.log_confusion_matrix(list(result.labels), result.metrics["confusion_matrix"])
    evaluation.metadata.update({"blessed": result.blessed, "reason": result.reason})
