"""Preprocess's Beam runner flags: local ones kept (FnApiRunner when none is named), Dataflow's filled in or refused."""

import pytest

from components.container_image import DATAFLOW_IMAGE
from components.preprocess.runner_flags import RunnerFlagError, for_run, is_remote, runner_of, with_local_default

GS_IN, GS_OUT = "gs://bucket/root/run/ingest/raw", "gs://bucket/root/run/preprocess/examples"
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=europe-west4"]


def test_direct_runner_flags_pass_through_even_with_local_artifacts():
    flags = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
    assert not is_remote(flags) and not is_remote([])
    assert for_run(flags, input_uri="/tmp/raw", output_uri="/tmp/examples") == flags


def test_flags_naming_no_runner_get_the_in_process_runner_and_others_keep_theirs():
    # Beam's DirectRunner would first try to download the Prism runner's binary.
    flags = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert with_local_default(flags) == [*flags, "--runner=FnApiRunner"]
    assert runner_of(flags) == runner_of(with_local_default(flags)) == "fnapirunner"
    assert with_local_default(["--runner=DirectRunner"]) == ["--runner=DirectRunner"]
    assert with_local_default(DATAFLOW) == DATAFLOW


def test_dataflow_gets_the_project_image_and_temp_beside_the_artifact():
    flags = for_run(DATAFLOW, input_uri=GS_IN, output_uri=GS_OUT + "/")
    assert flags[:3] == DATAFLOW
    assert f"--sdk_container_image={DATAFLOW_IMAGE}" in flags
    assert f"--temp_location={GS_OUT}-beam-temp" in flags


def test_dataflow_flags_the_user_gave_are_kept():
    given = [*DATAFLOW, "--sdk_container_image=my/image:1", "--temp_location=gs://scratch/tmp"]
    assert for_run(given, input_uri=GS_IN, output_uri=GS_OUT) == given


def test_a_remote_runner_with_local_artifacts_is_refused_naming_them():
    with pytest.raises(RunnerFlagError, match="remote runner 'dataflowrunner'.*/tmp/examples.*gs:// pipeline root"):
        for_run(DATAFLOW, input_uri=GS_IN, output_uri="/tmp/examples")
    # The flag's two-word form chooses the runner too.
    with pytest.raises(RunnerFlagError, match="flinkrunner"):
        for_run(["--runner", "FlinkRunner"], input_uri="/tmp/raw", output_uri=GS_OUT)


def test_dataflow_without_project_or_region_is_refused_naming_what_is_missing():
    with pytest.raises(RunnerFlagError, match="does not give --project and --region"):
        for_run(["--runner=DataflowRunner"], input_uri=GS_IN, output_uri=GS_OUT)
