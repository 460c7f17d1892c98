"""Runs the compiled pipeline on this machine through kfp.local and summarizes the run."""

import contextlib
import datetime
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, TextIO

from kfp import local

from components.common.runtime.logs import quiet_tensorflow
from pipeline.definition.config import PipelineConfig
from pipeline.definition.deployment import Deployment
from pipeline.definition.pipeline import (
    AUDIT_STEP_NAMES,
    STEP_NAMES,
    audit_pipeline,
    build_pipeline,
)
from pipeline.local.progress import ProgressView
from pipeline.local.summary import collect_summary
from pipeline.local.warm_steps import warm_steps

# kfp.local's warnings that say what a local run expects, as `warnings.filterwarnings` takes them
# (a message pattern matched at the start of the text, and the category). They match kfp's wording,
# which tests/unit/test_kfp_local_hooks.py checks against the warnings kfp emits.
KFP_WARNINGS_SILENCED = (
    # The steps name a container image that the SubprocessRunner will not use: that is the point
    # of the SubprocessRunner, and the image has the same package this environment has.
    ("You may be attemping to run a task", RuntimeWarning),  # "attemping": kfp's spelling
    # The CPU, memory and GPU settings are for a cluster (pipeline/definition/deployment.py); kfp.local says
    # for every task that it ignores them, which is expected here.
    ("Task .* have no effect in the current local runner", UserWarning),
)


def silence_kfp_warnings() -> None:
    """Has this process ignore kfp.local's expected warnings (`KFP_WARNINGS_SILENCED`)."""
    for message, category in KFP_WARNINGS_SILENCED:
        warnings.filterwarnings("ignore", message=message, category=category)


@dataclass(frozen=True)
class RunOutcome:
    """A finished local run: its summary, whether every step succeeded, and where the log is."""

    summary: dict[str, Any]
    succeeded: bool
    error: str | None
    log_path: str


def _run_dir(run_root: str) -> str | None:
    """The directory kfp.local made for the one run given `run_root` as its pipeline root."""
    created = sorted(name for name in os.listdir(run_root) if os.path.isdir(os.path.join(run_root, name)))
    return os.path.join(run_root, created[-1]) if created else None


def _step_starter(image: str | None, cold_steps: bool, log_path: str) -> contextlib.AbstractContextManager:
    """How this run's step processes start: forked warm, or (in containers, or asked) fresh."""
    if image or cold_steps:
        return contextlib.nullcontext()
    return warm_steps(log_path.removesuffix(".log") + ".fork-server.log")


def run_locally(config: PipelineConfig, pipeline_root: str, *, terminal: TextIO = sys.stdout,
                verbose: bool = False, image: str | None = None, isolated: bool = False,
                audit_only: bool = False, cold_steps: bool = False) -> RunOutcome:
    """Runs every step through kfp.local: in this Python environment, or each in the image.

    Args:
        config: the validated pipeline parameters.
        pipeline_root: where runs go, each in `run-<time>/`, with its log in `logs/`; created if
            missing.
        terminal: where progress is shown.
        verbose: show every line of every step, not only progress.
        image: run each step in this container image (kfp.local's DockerRunner) instead.
        isolated: with `image`, give each container only what a KFP pod has (pipeline/local/isolated.py):
            every parameter must then be a gs:// URI or a name, never a path on this machine.
        audit_only: run `audit_pipeline` (up to extraction, then the data audit) instead, here.
        cold_steps: without `image`, start every step in a fresh Python rather than forking it
            from one that has imported TensorFlow (pipeline/local/warm_steps.py).
    """
    pipeline_root = os.path.abspath(pipeline_root)
    os.makedirs(os.path.join(pipeline_root, "logs"), exist_ok=True)
    # Steps inherit this environment: keep TensorFlow's start-up chatter out of their output.
    quiet_tensorflow()
    silence_kfp_warnings()
    # No step retries here: kfp.local retries every failure alike, so a data error (one class, a
    # bad parameter) would wait 30 + 60 + 120 s for nothing. Storage calls retry their transient
    # errors themselves (components/common/storage/gcs.py); a cluster keeps its retries (deployment.py).
    if image and isolated:
        from pipeline.local.isolated import isolated_runner

        deployment = Deployment(image=image, retries=0, exit_notification=False)
        runner, pipeline_function = isolated_runner(deployment), build_pipeline(deployment)
    elif image:
        from pipeline.local.containers import docker_runner

        for local_dir in (config.serving_root, config.cache_root):
            if local_dir and not local_dir.startswith("gs://"):
                os.makedirs(local_dir, exist_ok=True)
        # The steps read and write these besides the pipeline root: the container sees them too.
        runner = docker_runner(read_only=[config.source, config.base_model, config.base_weights, config.exclude,
                                          config.relabel],
                               read_write=[config.serving_root, config.cache_root])
        pipeline_function = build_pipeline(Deployment(image=image, retries=0, exit_notification=False))
    elif audit_only:
        runner, pipeline_function = local.SubprocessRunner(use_venv=False), audit_pipeline
    else:
        runner = local.SubprocessRunner(use_venv=False)
        pipeline_function = build_pipeline(Deployment(retries=0, exit_notification=False))
    step_names = AUDIT_STEP_NAMES if audit_only else STEP_NAMES
    # A pipeline takes the parameters it declares; the audit's are a subset of the config's.
    arguments = {name: value for name, value in config.to_arguments().items()
                 if name in pipeline_function.component_spec.inputs}
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    log_path = os.path.join(pipeline_root, "logs", f"run-{stamp}.log")
    # Each run gets a pipeline root of its own, so that another run or an audit started in the
    # same --pipeline-root cannot be taken for this one when its directory is looked up.
    run_root = os.path.join(pipeline_root, f"run-{stamp}")
    os.makedirs(run_root)
    local.init(runner=runner, pipeline_root=run_root, raise_on_error=False)
    with open(log_path, "w", encoding="utf-8") as log:
        view = ProgressView(log, terminal, step_names, verbose)
        original_stdout = sys.stdout
        sys.stdout = view
        try:
            with _step_starter(image, cold_steps, log_path):
                pipeline_function(**arguments)
        finally:
            sys.stdout = original_stdout
    steps = {name: {"status": record.status, "seconds": record.seconds} for name, record in view.steps.items()}
    summary = collect_summary(_run_dir(run_root), steps, step_names)
    summary["log"] = log_path
    failed = [name for name, step in summary["steps"].items() if step["status"] != "SUCCESS"]
    error = None
    if failed:
        error = f"step {failed[0]} did not succeed: {view.failure_excerpt()}"
    return RunOutcome(summary, not failed, error, log_path)
