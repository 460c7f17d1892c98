"""The headstart pipeline: the six steps, the data audit, the optional fine-tuning phase and transfer-lift baseline."""

import contextlib

from kfp import dsl

from components.audit.component import audit_data
from components.common.config.knobs import documented
from components.common.config.run_settings import PROJECT
from components.evaluate.component import evaluate
from components.extract_features.component import extract_features
from components.fine_tune.component import fine_tune
from components.ingest.component import ingest
from components.notify_run.component import notify_run
from components.preprocess.component import preprocess
from components.push.component import push
from components.train_head.component import train_head
from components.transfer_lift.component import transfer_lift
from pipeline.definition.config import PipelineConfig
from pipeline.definition.deployment import Deployment

PIPELINE_NAME = PROJECT
# Every parameter's default, from the typed configs that declare them.
DEFAULTS = PipelineConfig()
# The pipeline's tasks in run order, as KFP names them.
STEP_NAMES = ["ingest", "preprocess", "extract-features", "train-head", "fine-tune", "transfer-lift", "audit-data",
              "evaluate", "push"]
# A cluster run's exit task, run however the steps ended.
NOTIFY_STEP = "notify-run"


def _exit_notification(deployment: Deployment, source, model_name):
    """Around a cluster run's steps, its exit task: the run's notification, however it ended."""
    if not deployment.exit_notification:
        return contextlib.nullcontext()  # a local run notifies from the CLI, with its summary
    exit_task = notify_run(source=source, model_name=model_name)
    deployment.apply(NOTIFY_STEP, exit_task)
    return dsl.ExitHandler(exit_task)


def build_pipeline(deployment: Deployment | None = None):
    """The pipeline function, its steps set up to run as `deployment` says (image, GPUs, resources)."""
    deployment = deployment or Deployment()

    @dsl.pipeline(name=PIPELINE_NAME)
    @documented(PipelineConfig)
    def headstart_pipeline(
        source: str = DEFAULTS.source,
        exclude: str = DEFAULTS.exclude,
        relabel: str = DEFAULTS.relabel,
        base_model: str = DEFAULTS.base_model,
        base_weights: str = DEFAULTS.base_weights,
        alpha: float = DEFAULTS.alpha,
        image_size: int = DEFAULTS.image_size,
        pooling: str = DEFAULTS.pooling,
        trust_base_model: bool = DEFAULTS.trust_base_model,
        train_fraction: float = DEFAULTS.train_fraction,
        eval_fraction: float = DEFAULTS.eval_fraction,
        beam_args: list = list(DEFAULTS.beam_args),
        compact_examples: bool = DEFAULTS.compact_examples,
        hidden_units: list = list(DEFAULTS.hidden_units),
        dropout: float = DEFAULTS.dropout,
        learning_rate: float = DEFAULTS.learning_rate,
        epochs: int = DEFAULTS.epochs,
        batch_size: int = DEFAULTS.batch_size,
        patience: int = DEFAULTS.patience,
        seed: int = DEFAULTS.seed,
        l2: float = DEFAULTS.l2,
        label_smoothing: float = DEFAULTS.label_smoothing,
        class_weights: bool = DEFAULTS.class_weights,
        tune_seconds: int = DEFAULTS.tune_seconds,
        augment_views: int = DEFAULTS.augment_views,
        test_time_augmentation: bool = DEFAULTS.test_time_augmentation,
        test_time_views: int = DEFAULTS.test_time_views,
        fine_tune_mode: str = DEFAULTS.fine_tune_mode,
        fine_tune_fraction: float = DEFAULTS.fine_tune_fraction,
        fine_tune_learning_rate: float = DEFAULTS.fine_tune_learning_rate,
        fine_tune_epochs: int = DEFAULTS.fine_tune_epochs,
        measure_transfer_lift: bool = DEFAULTS.measure_transfer_lift,
        accuracy_threshold: float = DEFAULTS.accuracy_threshold,
        auc_threshold: float = DEFAULTS.auc_threshold,
        champion_tolerance: float = DEFAULTS.champion_tolerance,
        max_test_interval: float = DEFAULTS.max_test_interval,
        bless_small_test_set: bool = DEFAULTS.bless_small_test_set,
        serving_root: str = DEFAULTS.serving_root,
        model_name: str = DEFAULTS.model_name,
        audit_top: int = DEFAULTS.audit_top,
        edge_export: bool = DEFAULTS.edge_export,
        cache_root: str = DEFAULTS.cache_root,
        use_cache: bool = DEFAULTS.use_cache,
    ):
        """Transfer learning for image classification.

        A frozen pretrained base network turns images into features, an MLP head is trained on them,
        and the model is evaluated, blessed against the one serving, and pushed to serving.
        """
        with _exit_notification(deployment, source, model_name):
            ingest_task = ingest(source=source, exclude=exclude, relabel=relabel, cache_root=cache_root,
                                 use_cache=use_cache)
            preprocess_task = preprocess(
                raw_examples=ingest_task.outputs["raw_examples"], image_size=image_size,
                train_fraction=train_fraction, eval_fraction=eval_fraction, beam_args=beam_args,
                compact_examples=compact_examples, cache_root=cache_root, use_cache=use_cache,
            )
            extract_task = extract_features(
                examples=preprocess_task.outputs["examples"], base_model=base_model, base_weights=base_weights,
                alpha=alpha, image_size=image_size, pooling=pooling, batch_size=batch_size,
                trust_base_model=trust_base_model, augment_views=augment_views,
                test_time_augmentation=test_time_augmentation, test_time_views=test_time_views, cache_root=cache_root,
                use_cache=use_cache,
            )
            train_task = train_head(
                features=extract_task.outputs["features"], hidden_units=hidden_units, dropout=dropout,
                learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
                label_smoothing=label_smoothing, class_weights=class_weights, tune_seconds=tune_seconds,
                cache_root=cache_root, use_cache=use_cache,
            )
            tune_task = fine_tune(
                examples=preprocess_task.outputs["examples"], base_network=extract_task.outputs["base_network"],
                head=train_task.outputs["head"], fine_tune_mode=fine_tune_mode, fine_tune_fraction=fine_tune_fraction,
                fine_tune_learning_rate=fine_tune_learning_rate, fine_tune_epochs=fine_tune_epochs,
                batch_size=batch_size, seed=seed, trust_base_model=trust_base_model, cache_root=cache_root,
                use_cache=use_cache,
            )
            lift_task = transfer_lift(
                measure_transfer_lift=measure_transfer_lift, examples=preprocess_task.outputs["examples"],
                base_network=extract_task.outputs["base_network"], hidden_units=hidden_units, dropout=dropout,
                learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
                label_smoothing=label_smoothing, class_weights=class_weights, trust_base_model=trust_base_model,
                cache_root=cache_root, use_cache=use_cache,
            )
            audit_task = audit_data(
                examples=preprocess_task.outputs["examples"], features=extract_task.outputs["features"],
                audit_top=audit_top, cache_root=cache_root, use_cache=use_cache,
            )
            evaluate_task = evaluate(
                examples=preprocess_task.outputs["examples"], features=extract_task.outputs["features"],
                audit=audit_task.outputs["audit"],
                base_network=tune_task.outputs["tuned_base_network"], head=tune_task.outputs["tuned_head"],
                lift=lift_task.outputs["lift"], accuracy_threshold=accuracy_threshold,
                auc_threshold=auc_threshold,
                champion_tolerance=champion_tolerance, max_test_interval=max_test_interval,
                bless_small_test_set=bless_small_test_set, serving_root=serving_root, model_name=model_name,
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                batch_size=batch_size, trust_base_model=trust_base_model, test_time_augmentation=test_time_augmentation,
                cache_root=cache_root, use_cache=use_cache,
            )
            push_task = push(
                evaluation=evaluate_task.outputs["evaluation"], examples=preprocess_task.outputs["examples"],
                base_network=tune_task.outputs["tuned_base_network"], head=tune_task.outputs["tuned_head"],
                serving_root=serving_root, model_name=model_name, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                edge_export=edge_export, trust_base_model=trust_base_model, cache_root=cache_root, use_cache=use_cache,
            )
            tasks = (ingest_task, preprocess_task, extract_task, train_task, tune_task, lift_task, audit_task,
                     evaluate_task, push_task)
            for name, task in zip(STEP_NAMES, tasks):
                deployment.apply(name, task)
        # No pipeline output: KFP takes none from inside an exit handler; push's artifact is the result.

    return headstart_pipeline


# For kfp.local and the default compiled YAML: the default image, no GPUs.
headstart_pipeline = build_pipeline()

# `headstart audit`: the steps up to extraction, then the audit alone.
AUDIT_STEP_NAMES = ["ingest", "preprocess", "extract-features", "audit-data"]


@dsl.pipeline(name=PIPELINE_NAME + "-audit")
def audit_pipeline(
    source: str = DEFAULTS.source,
    exclude: str = DEFAULTS.exclude,
    relabel: str = DEFAULTS.relabel,
    base_model: str = DEFAULTS.base_model,
    base_weights: str = DEFAULTS.base_weights,
    alpha: float = DEFAULTS.alpha,
    image_size: int = DEFAULTS.image_size,
    pooling: str = DEFAULTS.pooling,
    trust_base_model: bool = DEFAULTS.trust_base_model,
    train_fraction: float = DEFAULTS.train_fraction,
    eval_fraction: float = DEFAULTS.eval_fraction,
    beam_args: list = list(DEFAULTS.beam_args),
    compact_examples: bool = DEFAULTS.compact_examples,
    batch_size: int = DEFAULTS.batch_size,
    audit_top: int = DEFAULTS.audit_top,
    cache_root: str = DEFAULTS.cache_root,
    use_cache: bool = DEFAULTS.use_cache,
) -> dsl.Artifact:
    """The data audit alone: ingest, preprocess and extract the features, then audit them."""
    ingest_task = ingest(source=source, exclude=exclude, relabel=relabel, cache_root=cache_root,
                         use_cache=use_cache)
    preprocess_task = preprocess(
        raw_examples=ingest_task.outputs["raw_examples"], image_size=image_size, train_fraction=train_fraction,
        eval_fraction=eval_fraction, beam_args=beam_args, compact_examples=compact_examples, cache_root=cache_root,
        use_cache=use_cache,
    )
    extract_task = extract_features(
        examples=preprocess_task.outputs["examples"], base_model=base_model, base_weights=base_weights, alpha=alpha,
        image_size=image_size, pooling=pooling, batch_size=batch_size, trust_base_model=trust_base_model,
        augment_views=1, test_time_augmentation=False, test_time_views=0, cache_root=cache_root,
        use_cache=use_cache,
    )
    audit_task = audit_data(
        examples=preprocess_task.outputs["examples"], features=extract_task.outputs["features"],
        audit_top=audit_top, cache_root=cache_root, use_cache=use_cache,
    )
    return audit_task.outputs["audit"]
