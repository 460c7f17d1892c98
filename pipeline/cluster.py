"""Submitting the compiled pipeline to a Kubeflow Pipelines endpoint: one run, a schedule, the runs.

Every call goes through the KFP SDK's client (`kfp.Client`), so what reaches the server is what
KFP itself sends. The pipeline is compiled afresh for each submission with the deployment's
image, GPUs and resources, into a temporary YAML that travels with the request.
"""

import dataclasses
import json
import os
import tempfile
from typing import Any

from kfp import compiler

from pipeline.deployment import Deployment
from pipeline.pipeline import PIPELINE_NAME, build_pipeline

DEFAULT_EXPERIMENT = "headstart"


def compile_pipeline(deployment: Deployment, output_path: str) -> str:
    """Writes the pipeline's KFP IR YAML for `deployment`; returns the path."""
    compiler.Compiler().compile(build_pipeline(deployment), output_path)
    return output_path


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`name=value` strings into pipeline arguments, each value typed like the parameter's default.

    Raises:
        ValueError: a pair without `=`, an unknown parameter, or a value of the wrong type.
    """
    from pipeline.config import PipelineConfig  # imports the step configs, TensorFlow with them

    fields = {field.name: field for field in dataclasses.fields(PipelineConfig)}
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--param {pair!r}: expected name=value")
        if name not in fields:
            raise ValueError(f"--param {name}: not a pipeline parameter (one of: {', '.join(sorted(fields))})")
        default = fields[name].default
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false"):
                    raise ValueError("expected true or false")
                params[name] = text.lower() == "true"
            elif isinstance(default, (int, float)):
                params[name] = type(default)(text)
            elif isinstance(default, tuple):
                params[name] = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
            else:
                params[name] = text
        except ValueError as error:
            raise ValueError(f"--param {name}={text!r}: {error}") from error
    # The typed configuration validates the values (ranges, names) before anything is sent.
    PipelineConfig(**{name: tuple(value) if isinstance(value, list) else value for name, value in params.items()})
    return params


def _client(host: str):
    import kfp

    return kfp.Client(host=host)


def submit(host: str, deployment: Deployment, params: dict[str, Any], experiment: str = DEFAULT_EXPERIMENT,
           run_name: str | None = None, pipeline_root: str | None = None) -> str:
    """Starts one run on the KFP endpoint at `host`; returns its run ID.

    Args:
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
        cron: five cron fields (see `kfp_cron`).
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


def list_runs(host: str, page_size: int = 20) -> list[dict[str, str]]:
    """The newest runs: ID, name, state and creation time of each."""
    response = _client(host).list_runs(page_size=page_size, sort_by="created_at desc")
    return [
        {"run_id": run.run_id, "name": run.display_name or "", "state": run.state or "UNKNOWN",
         "created_at": str(run.created_at or "")}
        for run in (response.runs or [])
    ]
