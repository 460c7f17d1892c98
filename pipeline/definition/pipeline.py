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
from pipeline.definition.parameters import takes_parameters

PIPELINE_NAME = PROJECT
# The pipeline's tasks in run order, as KFP names them.
STEP_NAMES = ["ingest", "preprocess", "extract-features", "train-head", "fine-tune", "transfer-lift", "audit-data",
              "evaluate", "push"]
# A cluster run's exit task, run however the steps ended.
NOTIFY_STEP = "notify-run"


# The parameters handed on by name: the head's to train_head, the cache's to every step.
HEAD_PARAMETERS = tuple(knob_fields(HeadConfig))
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
    @takes_parameters()
    def headstart_pipeline(p: SimpleNamespace):
        """Transfer learning for image classification.

        A frozen pretrained base network turns images into features, an MLP head is trained on them,
        and the model is evaluated, blessed against the one serving, and pushed to serving.
        """
        with _exit_notification(deployment, p.source, p.model_name):
            ingest_task, preprocess_task, extract_task, audit_task = _examples_features_and_audit(
                p, augment_views=p.augment_views, test_time_augmentation=p.test_time_augmentation,
                test_time_views=p.test_time_views)
            examples, features = preprocess_task.outputs["examples"], extract_task.outputs["features"]
            base_network = extract_task.outputs["base_network"]
            cache = _arguments(p, CACHE_PARAMETERS)
            train_task = train_head(features=features, **_arguments(p, HEAD_PARAMETERS), **cache)
            tune_task = fine_tune(
                examples=examples, base_network=base_network, head=train_task.outputs["head"],
                fine_tune_mode=p.fine_tune_mode, fine_tune_fraction=p.fine_tune_fraction,
                fine_tune_learning_rate=p.fine_tune_learning_rate, fine_tune_epochs=p.fine_tune_epochs,
                batch_size=p.batch_size, seed=p.seed, trust_base_model=p.trust_base_model, **cache,
            )
            # The lift trains the head train_head trained (its searched settings too), on a random base.
            lift_task = transfer_lift(
                measure_transfer_lift=p.measure_transfer_lift, examples=examples, base_network=base_network,
                head=train_task.outputs["head"], trust_base_model=p.trust_base_model, **cache,
            )
            tuned_base, tuned_head = tune_task.outputs["tuned_base_network"], tune_task.outputs["tuned_head"]
            evaluate_task = evaluate(
                examples=examples, features=features, audit=audit_task.outputs["audit"], base_network=tuned_base,
                head=tuned_head, lift=lift_task.outputs["lift"], accuracy_threshold=p.accuracy_threshold,
                auc_threshold=p.auc_threshold, champion_tolerance=p.champion_tolerance,
                max_test_interval=p.max_test_interval, bless_small_test_set=p.bless_small_test_set,
                serving_root=p.serving_root, model_name=p.model_name, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                batch_size=p.batch_size, trust_base_model=p.trust_base_model,
                test_time_augmentation=p.test_time_augmentation, **cache,
            )
            push_task = push(
                evaluation=evaluate_task.outputs["evaluation"], examples=examples, base_network=tuned_base,
                head=tuned_head, serving_root=p.serving_root, model_name=p.model_name,
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, edge_export=p.edge_export,
                trust_base_model=p.trust_base_model, **cache,
            )
            tasks = (ingest_task, preprocess_task, extract_task, train_task, tune_task, lift_task, audit_task,
                     evaluate_task, push_task)
            for name, task in zip(STEP_NAMES, tasks):
                deployment.apply(name, task)
        # No pipeline output: KFP takes none from inside an exit handler; push's artifact is the result.

    return headstart_pipeline


# For kfp.local and the default compiled YAML: the default image, no GPUs.
headstart_pipeline = build_pipeline()

# `headstart audit`: the steps up to extraction, then the audit alone, with their parameters.
AUDIT_STEP_NAMES = ["ingest", "preprocess", "extract-features", "audit-data"]
AUDIT_PARAMETERS = ("source", "exclude", "relabel", "base_model", "base_weights", "alpha", "image_size", "pooling",
                    "trust_base_model", "train_fraction", "eval_fraction", "beam_args", "compact_examples",
                    "batch_size", "audit_top", "cache_root", "use_cache")


@dsl.pipeline(name=PIPELINE_NAME + "-audit")
@takes_parameters(AUDIT_PARAMETERS)
def audit_pipeline(p: SimpleNamespace) -> dsl.Artifact:
    """The data audit alone: ingest, preprocess and extract the features, then audit them."""
    # One view per image, none at test time: the audit looks at the images themselves.
    *_, audit_task = _examples_features_and_audit(p, augment_views=1, test_time_augmentation=False,
                                                  test_time_views=0)
    return audit_task.outputs["audit"]
