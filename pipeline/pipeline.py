"""The headstart pipeline: the six steps, the optional fine-tuning phase and transfer-lift baseline."""

from kfp import dsl

from components.evaluate.component import evaluate
from components.extract_features.component import extract_features
from components.fine_tune.component import fine_tune
from components.ingest.component import ingest
from components.preprocess.component import preprocess
from components.push.component import push
from components.train_head.component import train_head
from components.transfer_lift.component import transfer_lift
from pipeline.deployment import Deployment

PIPELINE_NAME = "headstart"
# The pipeline's tasks in run order, as KFP names them.
STEP_NAMES = ["ingest", "preprocess", "extract-features", "train-head", "fine-tune", "transfer-lift", "evaluate",
              "push"]


def build_pipeline(deployment: Deployment | None = None):
    """The pipeline function, its steps set up to run as `deployment` says (image, GPUs, resources)."""
    deployment = deployment or Deployment()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Transfer learning for image classification: a frozen pretrained base network, "
        "a trained MLP head, evaluated, blessed and pushed to serving.",
    )
    def headstart_pipeline(
        source: str = "demo:digits",
        base_model: str = "mobilenet",
        base_weights: str = "imagenet",
        alpha: float = 1.0,
        image_size: int = 224,
        pooling: str = "avg",
        trust_base_model: bool = False,
        train_fraction: float = 0.8,
        eval_fraction: float = 0.1,
        beam_args: list = [],
        hidden_units: list = [128],
        dropout: float = 0.2,
        learning_rate: float = 0.001,
        epochs: int = 20,
        batch_size: int = 32,
        patience: int = 5,
        seed: int = 42,
        l2: float = 0.0,
        label_smoothing: float = 0.0,
        class_weights: bool = False,
        fine_tune_mode: str = "auto",
        fine_tune_fraction: float = 0.2,
        fine_tune_learning_rate: float = 1e-5,
        fine_tune_epochs: int = 5,
        measure_transfer_lift: bool = False,
        accuracy_threshold: float = 0.8,
        auc_threshold: float = 0.0,
        champion_tolerance: float = 0.01,
        serving_root: str = "serving",
        model_name: str = "headstart",
        cache_root: str = "",
        use_cache: bool = True,
    ) -> dsl.Artifact:
        """The parameters are documented on `pipeline.config.PipelineConfig`, which mirrors them."""
        ingest_task = ingest(source=source, cache_root=cache_root, use_cache=use_cache)
        preprocess_task = preprocess(
            raw_examples=ingest_task.outputs["raw_examples"], image_size=image_size,
            train_fraction=train_fraction, eval_fraction=eval_fraction, beam_args=beam_args,
            cache_root=cache_root, use_cache=use_cache,
        )
        extract_task = extract_features(
            examples=preprocess_task.outputs["examples"], base_model=base_model, base_weights=base_weights,
            alpha=alpha, image_size=image_size, pooling=pooling, batch_size=batch_size,
            trust_base_model=trust_base_model,
            cache_root=cache_root, use_cache=use_cache,
        )
        train_task = train_head(
            features=extract_task.outputs["features"], hidden_units=hidden_units, dropout=dropout,
            learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
            label_smoothing=label_smoothing, class_weights=class_weights,
            cache_root=cache_root, use_cache=use_cache,
        )
        tune_task = fine_tune(
            examples=preprocess_task.outputs["examples"], base_network=extract_task.outputs["base_network"],
            head=train_task.outputs["head"], mode=fine_tune_mode, unfreeze_fraction=fine_tune_fraction,
            learning_rate=fine_tune_learning_rate, epochs=fine_tune_epochs, batch_size=batch_size, seed=seed,
            trust_base_model=trust_base_model, cache_root=cache_root, use_cache=use_cache,
        )
        lift_task = transfer_lift(
            measure=measure_transfer_lift, examples=preprocess_task.outputs["examples"],
            base_network=extract_task.outputs["base_network"], hidden_units=hidden_units, dropout=dropout,
            learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
            label_smoothing=label_smoothing, class_weights=class_weights, trust_base_model=trust_base_model,
            cache_root=cache_root, use_cache=use_cache,
        )
        evaluate_task = evaluate(
            examples=preprocess_task.outputs["examples"], features=extract_task.outputs["features"],
            base_network=tune_task.outputs["tuned_base_network"], head=tune_task.outputs["tuned_head"],
            lift=lift_task.outputs["lift"], accuracy_threshold=accuracy_threshold,
            auc_threshold=auc_threshold,
            champion_tolerance=champion_tolerance, serving_root=serving_root, model_name=model_name,
            batch_size=batch_size, trust_base_model=trust_base_model,
            cache_root=cache_root, use_cache=use_cache,
        )
        push_task = push(
            evaluation=evaluate_task.outputs["evaluation"], examples=preprocess_task.outputs["examples"],
            base_network=tune_task.outputs["tuned_base_network"], head=tune_task.outputs["tuned_head"],
            serving_root=serving_root, model_name=model_name, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            trust_base_model=trust_base_model, cache_root=cache_root, use_cache=use_cache,
        )
        tasks = (ingest_task, preprocess_task, extract_task, train_task, tune_task, lift_task, evaluate_task, push_task)
        for name, task in zip(STEP_NAMES, tasks):
            deployment.apply(name, task)
        return push_task.outputs["push_result"]

    return headstart_pipeline


# For kfp.local and the default compiled YAML: the default image, no GPUs.
headstart_pipeline = build_pipeline()
