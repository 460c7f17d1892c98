"""Submitting the compiled pipeline to a Kubeflow Pipelines endpoint: one run, a schedule, the runs.

Every call goes through the KFP SDK's client (`kfp.Client`), so what reaches the server is what
KFP itself sends. The pipeline is compiled afresh for each submission with the deployment's
image, GPUs and resources, into a temporary YAML that travels with the request.
"""

import dataclasses
import json
import os
import tempfile
import typing
from typing import Any

from kfp import compiler

from components.common.config.run_settings import PROJECT
from pipeline.cluster.cluster_paths import check_cluster_paths
from pipeline.definition.deployment import CACHE_MOUNT_PATH, Deployment
from pipeline.definition.pipeline import PIPELINE_NAME, build_pipeline

DEFAULT_EXPERIMENT = PROJECT


def compile_pipeline(deployment: Deployment, output_path: str) -> str:
    """Writes the pipeline's KFP IR YAML for `deployment`; returns the path."""
    compiler.Compiler().compile(build_pipeline(deployment), output_path)
    return output_path


def _typed(text: str, default: Any, annotation: Any) -> Any:
    """One `--param` value as the config's field types it: lists of ints stay ints."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return text.lower() == "true"
    if isinstance(default, (int, float)):
        return type(default)(text)
    if isinstance(default, tuple):
        element = typing.get_args(annotation)[0]
        items = json.loads(text) if text.startswith("[") else [item.strip() for item in text.split(",") if item.strip()]
        if not isinstance(items, list):
            raise ValueError("expected a list, e.g. 128,64 or [128, 64]")
        return [element(item) for item in items]
    return text


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`name=value` strings into pipeline arguments, each value typed like the config's field.

    Lists take `a,b` or JSON (`hidden_units=128,64` or `hidden_units=[128,64]`), their items typed
    like the field's (ints for hidden_units).

    Raises:
        ValueError: a pair without `=`, an unknown parameter, or a value of the wrong type.
    """
    from pipeline.definition.config import PipelineConfig

    fields = {field.name: field for field in dataclasses.fields(PipelineConfig)}
    annotations = typing.get_type_hints(PipelineConfig)
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--param {pair!r}: expected name=value")
        if name not in fields:
            raise ValueError(f"--param {name}: not a pipeline parameter (one of: {', '.join(sorted(fields))})")
        try:
            params[name] = _typed(text, fields[name].default, annotations[name])
        except (ValueError, TypeError) as error:
            raise ValueError(f"--param {name}={text!r}: {error}") from error
    # The typed configuration validates the values (ranges, names) before anything is sent.
    PipelineConfig(**{name: tuple(value) if isinstance(value, list) else value for name, value in params.items()})
    return params


def with_cluster_defaults(params: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    """The run's parameters with what the deployment implies: the cache on its volume, if one is named."""
    if deployment.volumes and "cache_root" not in params:
        return {**params, "cache_root": CACHE_MOUNT_PATH}
    return params


def check_reachable(params: dict[str, Any], deployment: Deployment, pipeline_root: str | None) -> None:
    """Refuses, naming it, every path parameter (set or default) that no pod of the run could reach.

    Raises:
        ValueError: see `pipeline.cluster.cluster_paths.check_cluster_paths`.
    """
    from pipeline.definition.config import PipelineConfig

    values = {**PipelineConfig().to_arguments(), **params}
    check_cluster_paths(values, deployment.volume_paths, pipeline_root)


def _client(host: str):
    import kfp

    return kfp.Client(host=host)


def submit(host: str, deployment: Deployment, params: dict[str, Any], experiment: str = DEFAULT_EXPERIMENT,
           run_name: str | None = None, pipeline_root: str | None = None) -> str:
    """Starts one run on the KFP endpoint at `host`; returns its run ID.

    Args:
        host: the KFP API endpoint.
        deployment: how the steps run there (images, GPUs, resources, Kubernetes settings).
        params: the pipeline's parameter values by name; the others keep the pipeline's defaults.
        experiment: the KFP experiment the run belongs to.
        run_name: the run's display name; None for one KFP chooses.
        pipeline_root: where the run's artifacts go (gs://...); None for the cluster's default.
    """
    with tempfile.TemporaryDirectory() as scratch:
        package = compile_pipeline(deployment, os.path.join(scratch, f"{PIPELINE_NAME}.yaml"))
        result = _client(host).create_run_from_pipeline_package(
            package, arguments=params, run_name=run_name, experiment_name=experiment, pipeline_root=pipeline_root,
        )
    return result.run_id


def submit_to_vertex(project: str, region: str, deployment: Deployment, params: dict[str, Any],
                     pipeline_root: str, run_name: str | None = None) -> str:
    """Starts one run on Vertex AI Pipelines; returns the job's resource name.

    Needs google-cloud-aiplatform (`pip install 'headstart[vertex]'`) and Google credentials.
    """
    try:
        from google.cloud import aiplatform
    except ImportError as error:
        raise RuntimeError("submitting to Vertex AI needs google-cloud-aiplatform: "
                           "pip install 'headstart[vertex]'") from error
    if not pipeline_root.startswith("gs://"):
        raise ValueError(f"--pipeline-root must be a gs:// URI for Vertex AI, got {pipeline_root!r}")
    aiplatform.init(project=project, location=region)
    with tempfile.TemporaryDirectory() as scratch:
        package = compile_pipeline(deployment, os.path.join(scratch, f"{PIPELINE_NAME}.yaml"))
        job = aiplatform.PipelineJob(display_name=run_name or PIPELINE_NAME, template_path=package,
                                     pipeline_root=pipeline_root, parameter_values=params, enable_caching=False)
        job.submit()
    return job.resource_name


def kfp_cron(cron: str) -> str:
    """A five-field cron expression ("0 3 * * 1": Mondays at 03:00) as KFP takes it: six fields, seconds first."""
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"--cron {cron!r}: expected five fields (minute hour day month weekday)")
    return " ".join(["0", *fields] if len(fields) == 5 else fields)


def schedule(host: str, deployment: Deployment, params: dict[str, Any], cron: str,
             experiment: str = DEFAULT_EXPERIMENT, name: str = f"{PIPELINE_NAME}-retraining",
             pipeline_root: str | None = None) -> str:
    """Creates a recurring run: at most one run at a time, missed runs not caught up; returns its ID.

    Args:
        host: the KFP API endpoint.
        deployment: how the steps run there (images, GPUs, resources, Kubernetes settings).
        params: the pipeline's parameter values by name, the same for every run; the others keep
            the pipeline's defaults.
        cron: five cron fields (see `kfp_cron`).
        experiment: the KFP experiment the runs belong to.
        name: the recurring run's name.
        pipeline_root: where the runs' artifacts go (gs://...); None for the cluster's default.
    """
    cron = kfp_cron(cron)
    client = _client(host)
    experiment_id = client.create_experiment(name=experiment).experiment_id
    with tempfile.TemporaryDirectory() as scratch:
        package = compile_pipeline(deployment, os.path.join(scratch, f"{PIPELINE_NAME}.yaml"))
        recurring = client.create_recurring_run(
            experiment_id=experiment_id, job_name=name, cron_expression=cron, max_concurrency=1,
            no_catchup=True, params=params, pipeline_package_path=package, pipeline_root=pipeline_root,
        )
    return recurring.recurring_run_id


def list_schedules(host: str, page_size: int = 100) -> list[dict[str, str]]:
    """The recurring runs, newest first: ID, name, status (ENABLED or DISABLED), cron and creation time."""
    response = _client(host).list_recurring_runs(page_size=page_size, sort_by="created_at desc")
    schedules = []
    for recurring in response.recurring_runs or []:
        cron = getattr(getattr(recurring.trigger, "cron_schedule", None), "cron", None) if recurring.trigger else None
        schedules.append({"schedule_id": recurring.recurring_run_id, "name": recurring.display_name or "",
                          "status": recurring.status or "UNKNOWN", "cron": cron or "",
                          "created_at": str(recurring.created_at or "")})
    return schedules


def pause_schedule(host: str, schedule_id: str) -> None:
    """Stops a recurring run from starting runs, keeping it to resume (KFP's disable)."""
    _client(host).disable_recurring_run(schedule_id)


def resume_schedule(host: str, schedule_id: str) -> None:
    """Lets a paused recurring run start runs again (KFP's enable)."""
    _client(host).enable_recurring_run(schedule_id)


def delete_schedule(host: str, schedule_id: str) -> None:
    """Deletes a recurring run; the runs it started stay."""
    _client(host).delete_recurring_run(schedule_id)


def update_schedule(host: str, schedule_id: str, deployment: Deployment, params: dict[str, Any], cron: str,
                    experiment: str = DEFAULT_EXPERIMENT, name: str = f"{PIPELINE_NAME}-retraining",
                    pipeline_root: str | None = None) -> str:
    """Replaces a recurring run with one of these settings; returns the new one's ID.

    KFP's API has no update of a recurring run: the new one is created first, then the old one
    deleted, so that a failure leaves the old schedule running rather than none.
    """
    new_id = schedule(host, deployment, params, cron, experiment, name, pipeline_root)
    delete_schedule(host, schedule_id)
    return new_id


def list_runs(host: str, page_size: int = 20) -> list[dict[str, str]]:
    """The newest runs: ID, name, state and creation time of each."""
    response = _client(host).list_runs(page_size=page_size, sort_by="created_at desc")
    return [
        {"run_id": run.run_id, "name": run.display_name or "", "state": run.state or "UNKNOWN",
         "created_at": str(run.created_at or "")}
        for run in (response.runs or [])
    ]
