"""Cluster submission: the compiled pipeline against KFP's pipeline-spec schema, and the requests the
real `kfp.Client` sends for `headstart submit`, `schedule` and `runs` (a local server records them).
"""

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import cli
from pipeline.cluster import compile_pipeline
from pipeline.deployment import GPU_STEPS, NETWORK_STEPS, Deployment
from pipeline.summary import STEP_NAMES
from tests.integration.kfp_recorder import KfpRecorder

IMAGE = "registry.example.com/team/headstart:2026-11-27"


def executors_by_task(spec: dict) -> dict[str, dict]:
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    components = spec["components"]
    return {name: executors[components[task["componentRef"]["name"]]["executorLabel"]]["container"]
            for name, task in tasks.items()}


def check_deployment(spec: dict, gpus: int) -> None:
    # Strict parse: an unknown or misspelled field anywhere fails, as the KFP backend would.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    containers = executors_by_task(spec)
    assert sorted(containers) == sorted(STEP_NAMES)
    for name, container in containers.items():
        assert container["image"] == IMAGE, name
        resources = container["resources"]
        assert resources["resourceCpuLimit"] and resources["resourceMemoryLimit"], name
        accelerator = resources.get("accelerator")
        if name in GPU_STEPS and gpus:
            assert accelerator["resourceCount"] == str(gpus) and accelerator["resourceType"] == "nvidia.com/gpu"
        else:
            assert accelerator is None, name
    tasks = spec["root"]["dag"]["tasks"]
    for name, task in tasks.items():
        assert task["cachingOptions"] == {}, name  # KFP's cache off: the steps key their own by content
        assert ("retryPolicy" in task) == (name in NETWORK_STEPS), name


def test_compiled_pipeline_follows_the_schema_with_image_gpus_and_retries(tmp_path):
    check_deployment(yaml.safe_load(open(compile_pipeline(Deployment(image=IMAGE, gpus=2), str(tmp_path / "p.yaml")))),
                     gpus=2)
    check_deployment(yaml.safe_load(open(compile_pipeline(Deployment(image=IMAGE), str(tmp_path / "p0.yaml")))),
                     gpus=0)


def test_the_image_comes_from_the_environment_when_not_given(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_IMAGE", IMAGE)
    assert cli.main(["compile", "--output", str(tmp_path / "p.yaml")]) == 0
    assert {c["image"] for c in executors_by_task(yaml.safe_load(open(tmp_path / "p.yaml"))).values()} == {IMAGE}


def test_submit_sends_the_compiled_pipeline_with_image_gpus_and_parameters(capsys):
    with KfpRecorder() as kfp:
        code = cli.main(["submit", "--host", kfp.url, "--experiment", "nightly", "--run-name", "cats-v2",
                         "--pipeline-root", "gs://artifacts/headstart",
                         "--image", IMAGE, "--gpus", "1", "--param", "source=gs://photos/cats_dogs",
                         "--param", "epochs=30", "--param", "hidden-units=[256,64]", "--param", "class_weights=true"])
        assert code == 0
        assert kfp.sent("POST", "/experiments")[0].json()["display_name"] == "nightly"
        [run] = kfp.sent("POST", "/runs")
    body = run.json()
    assert body["display_name"] == "cats-v2" and body["experiment_id"] == "exp-1"
    assert body["runtime_config"]["pipeline_root"] == "gs://artifacts/headstart"
    assert body["runtime_config"]["parameters"] == {"source": "gs://photos/cats_dogs", "epochs": 30,
                                                    "hidden_units": [256, 64], "class_weights": True}
    check_deployment(body["pipeline_spec"], gpus=1)
    assert "submitted run run-1" in capsys.readouterr().out


def test_schedule_runs_one_at_a_time_without_catching_up(capsys):
    with KfpRecorder() as kfp:
        assert cli.main(["schedule", "--host", kfp.url, "--cron", "0 3 * * 1", "--image", IMAGE]) == 0
        [recurring] = kfp.sent("POST", "/recurringruns")
    body = recurring.json()
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"  # KFP's six fields, seconds first
    assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True
    assert body["display_name"] == "headstart-retraining" and body["experiment_id"] == "exp-1"
    check_deployment(body["pipeline_spec"], gpus=0)
    assert "one run at a time, no catch-up" in capsys.readouterr().out


def test_runs_lists_each_run_with_its_state(capsys):
    with KfpRecorder() as kfp:
        assert cli.main(["runs", "--host", kfp.url]) == 0
        [listing] = kfp.sent("GET", "/runs")
    assert listing.query["sort_by"] == ["created_at desc"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "STATE"]
    assert lines[1].split()[:2] == ["run-1", "SUCCEEDED"] and lines[2].split()[:2] == ["run-2", "RUNNING"]


def test_bad_parameters_are_refused_before_anything_is_sent(capsys):
    with KfpRecorder() as kfp:
        assert cli.main(["submit", "--host", kfp.url, "--param", "epochs=-3"]) == 2
        assert cli.main(["submit", "--host", kfp.url, "--param", "epoch=3"]) == 2
        assert cli.main(["schedule", "--host", kfp.url, "--cron", "at 3am"]) == 2
        assert cli.main(["submit", "--host", kfp.url, "--gpus", "-1"]) == 2
        assert cli.main(["submit"]) == 2
        assert cli.main(["submit", "--vertex", "my-project/europe-west4"]) == 2  # no gs:// pipeline root
        assert not kfp.requests
    errors = capsys.readouterr().err
    assert "epochs" in errors and "--param epoch: not a pipeline parameter" in errors
    assert "--cron 'at 3am'" in errors and "gpus must be 0 or more" in errors
    assert "--host is required" in errors and "--vertex takes PROJECT/REGION and needs --pipeline-root" in errors
