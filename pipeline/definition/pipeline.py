"""The headstart pipeline: the six steps, the data audit, the optional fine-tuning phase and transfer-lift baseline."""

import contextlib
from types import SimpleNamespace

from kfp import dsl

from components.audit.component import audit_data
from components.common.config.head_config import HeadConfig
from components.common.config.knobs import documented, knob_fields
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


# The parameters handed on by name: the head's to train_head, and to transfer_lift, which trains the
# same head on a random-weight base with no search (so no tune_seconds); the cache's to every step.
HEAD_PARAMETERS = tuple(knob_fields(HeadConfig))
LIFT_HEAD_PARAMETERS = tuple(name for name in HEAD_PARAMETERS if name != "tune_seconds")
CACHE_PARAMETERS = ("cache_root", "use_cache")


def _arguments(parameters: SimpleNamespace, names: tuple[str, ...]) -> dict:
    """The pipeline's parameters of these names, as a step's arguments of the same names."""
    return {name: getattr(parameters, name) for name in names}


def _examples_features_and_audit(p: SimpleNamespace, **views):
    """Ingest, preprocess, extract-features and audit-data, wired as both pipelines run them.

    Args:
        p: the pipeline's parameters (both pipelines name them alike).
        views: extract-features' augment_views, test_time_augmentation and test_time_views.
    """
    cache = _arguments(p, CACHE_PARAMETERS)
    ingest_task = ingest(source=p.source, exclude=p.exclude, relabel=p.relabel, **cache)
    preprocess_task = preprocess(
        raw_examples=ingest_task.outputs["raw_examples"], image_size=p.image_size, train_fraction=p.train_fraction,
        eval_fraction=p.eval_fraction, beam_args=p.beam_args, compact_examples=p.compact_examples, **cache,
    )
    examples = preprocess_task.outputs["examples"]
    extract_task = extract_features(
        examples=examples, base_model=p.base_model, base_weights=p.base_weights, alpha=p.alpha,
        image_size=p.image_size, pooling=p.pooling, batch_size=p.batch_size, trust_base_model=p.trust_base_model,
        **views, **cache,
    )
    # The audit needs only the examples and the features: on a cluster it runs beside training.
    audit_task = audit_data(examples=examples, features=extract_task.outputs["features"], audit_top=p.audit_top,
                            **cache)
    return ingest_task, preprocess_task, extract_task, audit_task


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
        p = SimpleNamespace(**locals())  # every parameter, before any other name is bound
        with _exit_notification(deployment, source, model_name):
            ingest_task, preprocess_task, extract_task, audit_task = _examples_features_and_audit(
                p, augment_views=augment_views, test_time_augmentation=test_time_augmentation,
                test_time_views=test_time_views)
            examples, features = preprocess_task.outputs["examples"], extract_task.outputs["features"]
            base_network = extract_task.outputs["base_network"]
            cache = _arguments(p, CACHE_PARAMETERS)
            train_task = train_head(features=features, **_arguments(p, HEAD_PARAMETERS), **cache)
            tune_task = fine_tune(
                examples=examples, base_network=base_network, head=train_task.outputs["head"],
                fine_tune_mode=fine_tune_mode, fine_tune_fraction=fine_tune_fraction,
                fine_tune_learning_rate=fine_tune_learning_rate, fine_tune_epochs=fine_tune_epochs,
                batch_size=batch_size, seed=seed, trust_base_model=trust_base_model, **cache,
            )
            lift_task = transfer_lift(
                measure_transfer_lift=measure_transfer_lift, examples=examples, base_network=base_network,
                trust_base_model=trust_base_model, **_arguments(p, LIFT_HEAD_PARAMETERS), **cache,
            )
            tuned_base, tuned_head = tune_task.outputs["tuned_base_network"], tune_task.outputs["tuned_head"]
            evaluate_task = evaluate(
                examples=examples, features=features, audit=audit_task.outputs["audit"], base_network=tuned_base,
                head=tuned_head, lift=lift_task.outputs["lift"], accuracy_threshold=accuracy_threshold,
                auc_threshold=auc_threshold, champion_tolerance=champion_tolerance,
                max_test_interval=max_test_interval, bless_small_test_set=bless_small_test_set,
                serving_root=serving_root, model_name=model_name, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                batch_size=batch_size, trust_base_model=trust_base_model, test_time_augmentation=test_time_augmentation,
                **cache,
            )
            push_task = push(
                evaluation=evaluate_task.outputs["evaluation"], examples=examples, base_network=tuned_base,
                head=tuned_head, serving_root=serving_root, model_name=model_name,
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, edge_export=edge_export, trust_base_model=trust_base_model,
                **cache,
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
    p = SimpleNamespace(**locals())
    # One view per image, none at test time: the audit looks at the images themselves.
    *_, audit_task = _examples_features_and_audit(p, augment_views=1, test_time_augmentation=False,
                                                  test_time_views=0)
    return audit_task.outputs["audit"]
