"""Preprocess's Beam runner flags: Beam's in-process runner, or a remote runner such as Dataflow.

A remote runner's workers cannot see this container's paths, so a remote run reads and writes the
artifacts' gs:// URIs. For Dataflow, the flags a run can do without get defaults here: the
project's Dataflow image as the workers' SDK container, and temp and staging locations on gs://
beside the output artifact. Project and region have no sensible default and are required.

Flags that name no runner get Beam's in-process FnApiRunner. Beam's DirectRunner, its default,
first tries the Prism runner, which downloads its binary from GitHub as it starts: a pod without
egress waits on that, and one with egress runs an engine this project does not test. The
DirectRunner falls back to the FnApiRunner when Prism cannot start, so that is the engine every
local figure in the README was measured on; `direct_running_mode` and `direct_num_workers` apply
to it as to the DirectRunner.
"""

from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from components.container_image import DATAFLOW_IMAGE

LOCAL_DEFAULT_RUNNER = "FnApiRunner"
DIRECT_RUNNERS = {"directrunner", "bundlebasedirectrunner", "swallowingdirectrunner", "prismrunner", "fnapirunner"}
DATAFLOW_RUNNER = "dataflowrunner"
# Beside the artifact, not inside it: the step cache keeps the artifact's files, not Dataflow's scratch.
TEMP_SUFFIX = "-beam-temp"


class RunnerFlagError(ValueError):
    """The Beam flags cannot work for this run: a remote runner with local artifacts, or Dataflow flags missing."""


def runner_of(beam_args: Sequence[str]) -> str:
    """The runner the flags choose, lowercased (LOCAL_DEFAULT_RUNNER when they name none)."""
    runner = PipelineOptions(list(beam_args)).get_all_options()["runner"] or LOCAL_DEFAULT_RUNNER
    return (runner if isinstance(runner, str) else type(runner).__name__).lower()


def with_local_default(beam_args: Sequence[str]) -> list[str]:
    """`beam_args`, plus `--runner=FnApiRunner` when they name no runner (see the module's docstring)."""
    flags = list(beam_args)
    if PipelineOptions(flags).get_all_options()["runner"] is None:
        flags.append(f"--runner={LOCAL_DEFAULT_RUNNER}")
    return flags


def is_remote(beam_args: Sequence[str]) -> bool:
    """Whether the runner's workers run elsewhere, and so cannot read this container's files."""
    return runner_of(beam_args) not in DIRECT_RUNNERS


def for_run(beam_args: Sequence[str], *, input_uri: str, output_uri: str) -> list[str]:
    """The flags to run preprocess with: `beam_args`, plus Dataflow's defaults for a Dataflow run.

    Args:
        beam_args: the user's `--beam-args`.
        input_uri: the raw examples artifact's URI.
        output_uri: the examples artifact's URI.

    Raises:
        RunnerFlagError: a remote runner while an artifact is not on gs://, or a Dataflow run
            without `--project` or `--region`.
    """
    flags = list(beam_args)
    if not is_remote(flags):
        return flags
    runner = runner_of(flags)
    local = [uri for uri in (input_uri, output_uri) if not uri.startswith("gs://")]
    if local:
        raise RunnerFlagError(
            f"--beam-args chooses the remote runner {runner!r}, whose workers cannot read this step's "
            f"local artifacts ({', '.join(local)}): give the pipeline a gs:// pipeline root"
        )
    if runner != DATAFLOW_RUNNER:
        return flags
    given = PipelineOptions(flags).get_all_options()
    missing = [f"--{name}" for name in ("project", "region") if not given[name]]
    if missing:
        raise RunnerFlagError(f"--beam-args chooses DataflowRunner but does not give {' and '.join(missing)}")
    if not given["sdk_container_image"]:
        flags.append(f"--sdk_container_image={DATAFLOW_IMAGE}")
    if not given["temp_location"]:
        flags.append(f"--temp_location={output_uri.rstrip('/')}{TEMP_SUFFIX}")
    return flags
