"""Cluster submission: the compiled pipeline against KFP's pipeline-spec schema, and the requests the
real `kfp.Client` sends for `headstart submit`, `schedule` and `runs` (a local server records them).
"""

import json
import os
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.cli import commands
from pipeline.cluster.submission import compile_pipeline
from pipeline.definition.deployment import CACHE_MOUNT_PATH, GPU_STEPS, NETWORK_STEPS, Deployment, VolumeMount
from pipeline.local.summary import STEP_NAMES
from tests.integration.compiled_spec import step_tasks
from tests.integration.kfp_recorder import KfpRecorder

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")
IMAGE = "registry.example.com/team/headstart:2026-11-27"
GPU_IMAGE = "registry.example.com/team/headstart-gpu:2026-11-27"
# What a run on a cluster needs at least: nothing on the submitting machine's disk.
REMOTE_ROOTS = ["--param", "serving_root=gs://models/served", "--param", "cache_root=gs://models/cache"]


def executors_by_task(spec: dict) -> dict[str, dict]:
    tasks = step_tasks(spec)
    executors = spec["deploymentSpec"]["executors"]
    components = spec["components"]
    return {name: executors[components[task["componentRef"]["name"]]["executorLabel"]]["container"]
            for name, task in tasks.items()}


def check_deployment(spec: dict, gpus: int, gpu_image: str = GPU_IMAGE, accelerator_type: str = "nvidia.com/gpu",
                     image: str = IMAGE) -> None:
    # Strict parse: an unknown or misspelled field anywhere fails, as the KFP backend would.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    containers = executors_by_task(spec)
    assert sorted(containers) == sorted(STEP_NAMES)
    assert set(GPU_STEPS) == {"extract-features", "train-head", "fine-tune"}
    for name, container in containers.items():
        resources = container["resources"]
        assert resources["resourceCpuLimit"] and resources["resourceMemoryLimit"], name
        accelerator = resources.get("accelerator")
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        if name in GPU_STEPS and gpus:
            assert container["image"] == gpu_image, name
            assert accelerator["resourceCount"] == str(gpus) and accelerator["resourceType"] == accelerator_type
            assert env["HEADSTART_GPUS"] == str(gpus), name  # the step fails if it finds fewer
        else:
            assert container["image"] == image, name
            assert accelerator is None and "HEADSTART_GPUS" not in env, name
    for name, task in step_tasks(spec).items():
        assert task["cachingOptions"] == {}, name  # KFP's cache off: the steps key their own by content
        assert ("retryPolicy" in task) == (name in NETWORK_STEPS), name


def test_compiled_pipeline_follows_the_schema_with_image_gpus_and_retries(tmp_path):
    deployment = Deployment(image=IMAGE, gpu_image=GPU_IMAGE, gpus=2)
    check_deployment(yaml.safe_load(open(compile_pipeline(deployment, str(tmp_path / "p.yaml")))), gpus=2)
    check_deployment(yaml.safe_load(open(compile_pipeline(Deployment(image=IMAGE), str(tmp_path / "p0.yaml")))),
                     gpus=0)


def test_compile_puts_the_gpu_image_and_gpus_on_the_network_steps_only(tmp_path, capsys):
    output = tmp_path / "p.yaml"
    assert commands.main(["compile", "--image", "R/h:1", "--gpu-image", "R/h-gpu:1", "--gpus", "1",
                     "--output", str(output)]) == 0
    check_deployment(yaml.safe_load(output.read_text()), gpus=1, gpu_image="R/h-gpu:1", image="R/h:1")
    assert "image R/h-gpu:1 for the GPU steps" in capsys.readouterr().out


def test_the_gpu_image_defaults_to_the_tag_with_gpu_appended(monkeypatch):
    monkeypatch.delenv("HEADSTART_GPU_IMAGE", raising=False)
    assert Deployment(image="r.io/team/h:1.2", gpus=1).gpu_image == "r.io/team/h:1.2-gpu"
    assert Deployment(image="localhost:5000/h", gpus=1).gpu_image == "localhost:5000/h:latest-gpu"
    monkeypatch.setenv("HEADSTART_GPU_IMAGE", GPU_IMAGE)
    assert Deployment(image=IMAGE, gpus=1).image_for("train-head") == GPU_IMAGE
    assert Deployment(image=IMAGE, gpus=1).image_for("push") == IMAGE


def test_the_image_comes_from_the_environment_when_not_given(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_IMAGE", IMAGE)
    assert commands.main(["compile", "--output", str(tmp_path / "p.yaml")]) == 0
    assert {c["image"] for c in executors_by_task(yaml.safe_load(open(tmp_path / "p.yaml"))).values()} == {IMAGE}


def test_submit_sends_the_compiled_pipeline_with_image_gpus_and_parameters(capsys):
    with KfpRecorder() as kfp:
        code = commands.main(["submit", "--host", kfp.url, "--experiment", "nightly", "--run-name", "cats-v2",
                         "--pipeline-root", "gs://artifacts/headstart",
                         "--image", IMAGE, "--gpu-image", GPU_IMAGE, "--gpus", "1",
                         "--param", "source=gs://photos/cats_dogs", *REMOTE_ROOTS,
                         "--param", "epochs=30", "--param", "hidden-units=256,64", "--param", "class_weights=true"])
        assert code == 0
        assert kfp.sent("POST", "/experiments")[0].json()["display_name"] == "nightly"
        [run] = kfp.sent("POST", "/runs")
    body = run.json()
    assert body["display_name"] == "cats-v2" and body["experiment_id"] == "exp-1"
    assert body["runtime_config"]["pipeline_root"] == "gs://artifacts/headstart"
    assert body["runtime_config"]["parameters"] == {
        "source": "gs://photos/cats_dogs", "serving_root": "gs://models/served", "cache_root": "gs://models/cache",
        "epochs": 30, "hidden_units": [256, 64], "class_weights": True}
    check_deployment(body["pipeline_spec"], gpus=1)
    assert "submitted run run-1" in capsys.readouterr().out


def test_schedule_runs_one_at_a_time_without_catching_up(capsys):
    with KfpRecorder() as kfp:
        assert commands.main(["schedule", "--host", kfp.url, "--cron", "0 3 * * 1", "--image", IMAGE,
                              *REMOTE_ROOTS]) == 0
        [recurring] = kfp.sent("POST", "/recurringruns")
    body = recurring.json()
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"  # KFP's six fields, seconds first
    assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True
    assert body["display_name"] == "headstart-retraining" and body["experiment_id"] == "exp-1"
    check_deployment(body["pipeline_spec"], gpus=0)
    assert "one run at a time, no catch-up" in capsys.readouterr().out


def test_runs_lists_each_run_with_its_state(capsys):
    with KfpRecorder() as kfp:
        assert commands.main(["runs", "--host", kfp.url]) == 0
        [listing] = kfp.sent("GET", "/runs")
    assert listing.query["sort_by"] == ["created_at desc"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "STATE"]
    assert lines[1].split()[:2] == ["run-1", "SUCCEEDED"] and lines[2].split()[:2] == ["run-2", "RUNNING"]


def test_bad_parameters_are_refused_before_anything_is_sent(capsys):
    with KfpRecorder() as kfp:
        assert commands.main(["submit", "--host", kfp.url, "--param", "epochs=-3"]) == 2
        assert commands.main(["submit", "--host", kfp.url, "--param", "epoch=3"]) == 2
        assert commands.main(["schedule", "--host", kfp.url, "--cron", "at 3am"]) == 2
        assert commands.main(["submit", "--host", kfp.url, "--gpus", "-1"]) == 2
        assert commands.main(["submit"]) == 2
        assert commands.main(["submit", "--vertex", "my-project/europe-west4"]) == 2  # no gs:// pipeline root
        assert not kfp.requests
    errors = capsys.readouterr().err
    assert "epochs" in errors and "--param epoch: not a pipeline parameter" in errors
    assert "--cron 'at 3am'" in errors and "gpus must be 0 or more" in errors
    assert "--host is required" in errors and "--vertex takes PROJECT/REGION and needs --pipeline-root" in errors


@pytest.mark.parametrize(
    "params, named",
    [
        ([], "serving_root='serving'"),  # the default: a pod's throwaway disk
        (["--param", "serving_root=gs://m/s", "--param", "cache_root=/tmp/cache"], "cache_root='/tmp/cache'"),
        (["--param", "serving_root=gs://m/s", "--param", "cache_root=/gcs/m/cache"], "Cloud Storage FUSE"),
        ([*REMOTE_ROOTS, "--param", "base_model=/home/me/base.keras"], "base_model='/home/me/base.keras'"),
        ([*REMOTE_ROOTS, "--param", "base_weights=weights.h5"], "base_weights='weights.h5'"),
        ([*REMOTE_ROOTS, "--pipeline-root", "runs"], "--pipeline-root 'runs'"),
    ],
)
def test_submit_refuses_a_path_no_pod_can_reach_and_sends_nothing(capsys, params, named):
    with KfpRecorder() as kfp:
        code = commands.main(["submit", "--host", kfp.url, "--param", "source=gs://b/photos", *params])
        assert not kfp.requests
    assert code == 2
    errors = capsys.readouterr().err
    assert named in errors and "Traceback" not in errors


def test_schedule_refuses_the_same_paths(capsys):
    with KfpRecorder() as kfp:
        code = commands.main(["schedule", "--host", kfp.url, "--cron", "0 3 * * 1", "--param", "source=/data/photos",
                         *REMOTE_ROOTS])
        assert not kfp.requests
    assert code == 2 and "source='/data/photos'" in capsys.readouterr().err


def test_a_run_without_a_cache_is_sent_with_a_note_saying_so(capsys):
    with KfpRecorder() as kfp:
        assert commands.main(["submit", "--host", kfp.url, "--param", "serving_root=gs://m/s"]) == 0
        assert kfp.sent("POST", "/runs")
    assert "no cache_root, so every step runs every time" in capsys.readouterr().err


def test_submit_with_the_default_serving_root_exits_2_without_a_traceback():
    """As a person types it: the real command in its own process; the endpoint does not exist."""
    completed = subprocess.run([HEADSTART, "submit", "--host", "http://127.0.0.1:9", "--param", "source=gs://b/photos"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert "serving_root" in completed.stderr and "Traceback" not in completed.stderr


def test_paths_on_a_declared_volume_are_not_looked_for_here(capsys):
    """A weights file that exists only in the cluster, on the cache volume, is sent as it is."""
    with KfpRecorder() as kfp:
        code = commands.main(["submit", "--host", kfp.url, "--cache-pvc", "headstart-cache",
                         "--param", "source=gs://b/photos", "--param", "serving_root=gs://m/s",
                         "--param", f"base_weights={CACHE_MOUNT_PATH}/weights/mobilenet.h5"])
        assert code == 0, capsys.readouterr().err
        [run] = kfp.sent("POST", "/runs")
    parameters = run.json()["runtime_config"]["parameters"]
    assert parameters["cache_root"] == CACHE_MOUNT_PATH  # the cache goes on the claim
    # The claim travels with the run, in the pipeline's Kubernetes platform spec.
    platform = run.json()["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    assert all(settings["pvcMount"][0]["mountPath"] == CACHE_MOUNT_PATH
               for settings in platform["deploymentSpec"]["executors"].values())
    assert parameters["base_weights"] == f"{CACHE_MOUNT_PATH}/weights/mobilenet.h5"


def test_kubernetes_settings_go_into_the_platform_spec(tmp_path):
    output = tmp_path / "p.yaml"
    assert commands.main(["compile", "--image", IMAGE, "--gpus", "1", "--cache-pvc", "headstart-cache",
                     "--gpu-node-selector", "cloud.google.com/gke-accelerator=nvidia-tesla-t4",
                     "--gpu-toleration", "nvidia.com/gpu=present:NoSchedule",
                     "--env-from-secret", "AWS_ACCESS_KEY_ID=s3-credentials/access-key",
                     "--gcp-key-secret", "gcs-writer", "--output", str(output)]) == 0
    pipeline_spec, platform_spec = yaml.safe_load_all(output.read_text())
    check_deployment(pipeline_spec, gpus=1, gpu_image=IMAGE + "-gpu")
    for container in executors_by_task(pipeline_spec).values():
        assert {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/secrets/google/key.json"} in container["env"]
    executors = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    components = pipeline_spec["components"]
    by_task = {name: executors[components[task["componentRef"]["name"]]["executorLabel"]]
               for name, task in step_tasks(pipeline_spec).items()}
    assert sorted(by_task) == sorted(STEP_NAMES)
    for name, settings in by_task.items():
        [volume] = settings["pvcMount"]
        assert volume["mountPath"] == CACHE_MOUNT_PATH and "headstart-cache" in json.dumps(volume), name
        [secret] = settings["secretAsEnv"]
        assert secret["keyToEnv"] == [{"secretKey": "access-key", "envVar": "AWS_ACCESS_KEY_ID"}], name
        assert "s3-credentials" in json.dumps(secret), name
        [key_volume] = settings["secretAsVolume"]
        assert key_volume["mountPath"] == "/var/secrets/google" and "gcs-writer" in json.dumps(key_volume), name
        if name in GPU_STEPS:
            assert settings["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
            assert settings["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                                "effect": "NoSchedule"}]
        else:
            assert "nodeSelector" not in settings and "tolerations" not in settings, name


def test_vertex_takes_its_own_accelerator_names():
    assert Deployment(gpus=1).for_vertex().accelerator == "NVIDIA_TESLA_T4"
    assert Deployment(gpus=1, accelerator="NVIDIA_L4").for_vertex().accelerator == "NVIDIA_L4"
    with pytest.raises(ValueError, match="'nvidia-l4' is not a Vertex AI accelerator type"):
        Deployment(gpus=1, accelerator="nvidia-l4").for_vertex()
    with pytest.raises(ValueError, match="Vertex AI takes no Kubernetes settings"):
        Deployment(volumes=(VolumeMount("cache", CACHE_MOUNT_PATH),)).for_vertex()


def test_list_parameters_are_typed_like_the_config():
    from pipeline.cluster.submission import parse_params

    assert parse_params(["hidden_units=128,64"]) == {"hidden_units": [128, 64]}
    assert parse_params(["beam_args=--runner=DataflowRunner,--region=europe-west4"]) == {
        "beam_args": ["--runner=DataflowRunner", "--region=europe-west4"]}
    with pytest.raises(ValueError, match="hidden_units='128,wide'"):
        parse_params(["hidden_units=128,wide"])


def test_schedules_are_listed_paused_resumed_updated_and_deleted(capsys):
    with KfpRecorder() as kfp:
        assert commands.main(["schedule", "list", "--host", kfp.url]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert commands.main(["schedule", "pause", "recurring-1", "--host", kfp.url]) == 0
        assert commands.main(["schedule", "resume", "recurring-1", "--host", kfp.url]) == 0
        assert commands.main(["schedule", "update", "recurring-1", "--host", kfp.url, "--cron", "0 4 * * 2",
                         "--image", IMAGE, *REMOTE_ROOTS]) == 0
        assert commands.main(["schedule", "delete", "recurring-2", "--host", kfp.url]) == 0
        sent = [(r.method, r.path.removeprefix("/apis/v2beta1")) for r in kfp.requests if "recurringruns" in r.path]
        [created] = kfp.sent("POST", "/recurringruns")
    assert listed[0].split()[:3] == ["SCHEDULE", "ID", "STATUS"]
    assert listed[1].split()[:3] == ["recurring-2", "DISABLED", "0"] and "headstart-nightly" in listed[1]
    assert listed[2].split()[:2] == ["recurring-1", "ENABLED"]
    assert sent == [("GET", "/recurringruns"), ("POST", "/recurringruns/recurring-1:disable"),
                    ("POST", "/recurringruns/recurring-1:enable"),
                    # update: the new schedule first, then the old one goes, so one always runs
                    ("POST", "/recurringruns"), ("DELETE", "/recurringruns/recurring-1"),
                    ("DELETE", "/recurringruns/recurring-2")]
    assert created.json()["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * 2"


@pytest.mark.parametrize("arguments, message", [
    (["schedule", "pause"], "pause needs the schedule's ID"),
    (["schedule", "list", "recurring-1"], "only pause, resume, update and delete take an ID"),
    (["schedule", "update", "recurring-1"], "--cron is required to update a schedule"),
    (["schedule"], "--cron is required to create a schedule"),
])
def test_schedule_actions_missing_what_they_need_are_refused_before_anything_is_sent(capsys, arguments, message):
    with KfpRecorder() as kfp:
        assert commands.main([*arguments, "--host", kfp.url]) == 2
        assert not [r for r in kfp.requests if "recurringruns" in r.path]
    assert message in capsys.readouterr().err
