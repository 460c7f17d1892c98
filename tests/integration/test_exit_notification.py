"""A cluster run's notification: the exit task in the compiled YAML, and that task run for real by kfp.local
around a step that fails."""


import pytest
from kfp import dsl, local

from components.notify_run.component import notify_run
from components.notify_run.core import NOTIFY_URL_ENV
from pipeline.definition.deployment import Deployment, SecretEnv
from pipeline.definition.pipeline import NOTIFY_STEP, build_pipeline


def compile_to(tmp_path, deployment):
    import yaml
    from kfp import compiler

    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(build_pipeline(deployment), str(path))
    return list(yaml.safe_load_all(path.read_text()))


def test_cluster_deployments_wrap_the_steps_in_an_exit_handler_that_gets_the_webhook_secret(tmp_path):
    secret = SecretEnv(NOTIFY_URL_ENV, "chat", "webhook")
    spec, platform = compile_to(tmp_path, Deployment(secret_env=(secret,)))
    root = spec["root"]["dag"]["tasks"]
    assert root[NOTIFY_STEP]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    [steps] = root[NOTIFY_STEP]["dependentTasks"]
    inner = spec["components"][root[steps]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"ingest", "evaluate", "push"} <= set(inner)
    env = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-notify-run"]["secretAsEnv"]
    assert env[0]["secretName"] == "chat" and env[0]["keyToEnv"] == [{"secretKey": "webhook", "envVar": NOTIFY_URL_ENV}]
    [local_spec] = compile_to(tmp_path, Deployment(retries=0, exit_notification=False))
    assert NOTIFY_STEP not in local_spec["root"]["dag"]["tasks"]  # a local run notifies from the CLI


@dsl.component(base_image="python:3.11")
def fails_on_purpose():
    raise RuntimeError("the train split has 1 class(es)")


@dsl.pipeline(name="headstart")
def failing_run(source: str = "gs://photos/cats_dogs", model_name: str = "pets"):
    with dsl.ExitHandler(notify_run(source=source, model_name=model_name)):
        fails_on_purpose()


@pytest.mark.parametrize("with_webhook", [True, False])
def test_the_exit_task_posts_how_a_failed_run_ended_and_never_fails_itself(tmp_path, monkeypatch, webhook,
                                                                           with_webhook):
    if with_webhook:
        monkeypatch.setenv(NOTIFY_URL_ENV, webhook.url)
    else:
        monkeypatch.delenv(NOTIFY_URL_ENV, raising=False)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=False)
    failing_run()
    if not with_webhook:
        assert webhook.messages == []
        return
    [message] = webhook.messages
    lines = message["text"].splitlines()
    assert lines[0].startswith("*headstart run ") and lines[0].endswith(" failed*")
    assert "source: gs://photos/cats_dogs" in lines and "model: pets" in lines
    assert any(line.startswith("error:") for line in lines)
