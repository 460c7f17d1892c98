"""The compiled pipeline: committed YAML up to date, tasks wired as designed, one image."""

import json

import pytest
import yaml

from pipeline.definition.pipeline import headstart_pipeline
from pipeline.local.summary import STEP_NAMES
from tests.conftest import REPO_ROOT
from tests.integration.compiled_spec import GOLDEN, RECORDED, compiled, signature, step_tasks

COMMITTED_YAML = REPO_ROOT / "pipeline" / "pipeline.yaml"


@pytest.mark.parametrize("recorded", sorted(RECORDED))
def test_compiled_pipeline_keeps_its_tasks_parameters_and_defaults(recorded):
    fresh = signature(compiled(RECORDED[recorded]))
    assert fresh == json.loads((GOLDEN / recorded).read_text()), (
        f"the compiled pipeline changed its tasks, parameters, defaults or wiring; if that was meant, "
        f"re-record tests/integration/golden/{recorded} with `python -m tests.integration.compiled_spec`"
    )


def test_committed_yaml_is_current():
    fresh = compiled(headstart_pipeline)
    assert fresh == yaml.safe_load(COMMITTED_YAML.read_text()), (
        "pipeline/pipeline.yaml is stale: run `make compile` and commit it"
    )


def test_tasks_are_wired_as_designed():
    spec = compiled(headstart_pipeline)
    tasks = step_tasks(spec)
    assert sorted(tasks) == sorted(STEP_NAMES)

    def artifact_sources(task):
        inputs = tasks[task].get("inputs", {}).get("artifacts", {})
        return {name: (a["taskOutputArtifact"]["producerTask"], a["taskOutputArtifact"]["outputArtifactKey"])
                for name, a in inputs.items()}

    assert artifact_sources("preprocess") == {"raw_examples": ("ingest", "raw_examples")}
    assert artifact_sources("extract-features") == {"examples": ("preprocess", "examples")}
    assert artifact_sources("train-head") == {"features": ("extract-features", "features")}
    # The lift trains the head train-head trained, as it recorded it, on a random-weight base.
    assert artifact_sources("transfer-lift") == {
        "examples": ("preprocess", "examples"),
        "base_network": ("extract-features", "base_network"),
        "head": ("train-head", "head"),
    }
    assert artifact_sources("fine-tune") == {
        "examples": ("preprocess", "examples"),
        "base_network": ("extract-features", "base_network"),
        "head": ("train-head", "head"),
    }
    # Evaluate and push take the models fine-tuning passed on (tuned, or unchanged when it was off);
    # evaluate scores the head on the extracted test features when the base is unchanged.
    assert artifact_sources("evaluate") == {
        "examples": ("preprocess", "examples"),
        "features": ("extract-features", "features"),
        "base_network": ("fine-tune", "tuned_base_network"),
        "head": ("fine-tune", "tuned_head"),
        "lift": ("transfer-lift", "lift"),
        "audit": ("audit-data", "audit"),
    }
    # The audit needs only the features and the examples: on a cluster it runs beside training.
    assert artifact_sources("audit-data") == {
        "examples": ("preprocess", "examples"),
        "features": ("extract-features", "features"),
    }
    assert artifact_sources("push") == {
        "evaluation": ("evaluate", "evaluation"),
        "examples": ("preprocess", "examples"),
        "base_network": ("fine-tune", "tuned_base_network"),
        "head": ("fine-tune", "tuned_head"),
    }
    # Trust in a .keras base comes only from the run's own parameter, in every step that loads it.
    for task in ("extract-features", "fine-tune", "transfer-lift", "evaluate", "push"):
        # Inside the exit handler's group the pipeline's inputs arrive as its channels.
        assert tasks[task]["inputs"]["parameters"]["trust_base_model"] == {
            "componentInputParameter": "pipelinechannel--trust_base_model"}, task
    outputs = spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["classification_metrics"]["artifactType"]["schemaTitle"] == "system.ClassificationMetrics"
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.HTML"


def test_every_component_uses_the_one_image():
    from components.container_image import IMAGE

    spec = compiled(headstart_pipeline)
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(STEP_NAMES) + 1 == 10  # the steps and the exit task
    assert {executor["container"]["image"] for executor in executors.values()} == {IMAGE}
