"""Reading a compiled pipeline: its steps' tasks wherever they sit (the cluster's exit handler groups them)."""

import json
import pathlib
import tempfile

import yaml
from kfp import compiler

from pipeline.definition.pipeline import NOTIFY_STEP, audit_pipeline, headstart_pipeline

# Each pipeline's tasks, parameters, defaults and wiring, recorded from its compiled spec: a change to
# the code's layout must leave them as they are; a change to the pipeline meant re-records them.
GOLDEN = pathlib.Path(__file__).parent / "golden"
RECORDED = {"pipeline_signature.json": headstart_pipeline, "audit_pipeline_signature.json": audit_pipeline}


def step_tasks(spec: dict) -> dict[str, dict]:
    """Every step's task by name: those at the top and those inside a group (the exit handler's), not the exit task."""
    found = {}
    pending = [spec["root"]["dag"]["tasks"]]
    while pending:
        for name, task in pending.pop().items():
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                pending.append(component["dag"]["tasks"])
            elif name != NOTIFY_STEP:
                found[name] = task
    return found


def _without_descriptions(value):
    """`value` with every `description` dropped: help text may change without the pipeline changing."""
    if isinstance(value, dict):
        return {key: _without_descriptions(item) for key, item in value.items() if key != "description"}
    if isinstance(value, list):
        return [_without_descriptions(item) for item in value]
    return value


def _tasks_in(spec: dict, dag: dict) -> dict:
    """Every task under `dag`, groups opened, each with its component's interface and its wiring."""
    found = {}
    for name, task in dag["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        found[name] = {
            "component": task["componentRef"]["name"],
            "interface": _without_descriptions(
                {key: component.get(key, {}) for key in ("inputDefinitions", "outputDefinitions")}),
            "inputs": task.get("inputs", {}),
            "after": sorted(task.get("dependentTasks", [])),
            "trigger": task.get("triggerPolicy", {}),
        }
        if "dag" in component:
            found[name]["tasks"] = _tasks_in(spec, component["dag"])
    return found


def signature(spec: dict) -> dict:
    """What a compiled pipeline does, without its help text or code: parameters, defaults, tasks and wiring."""
    return {
        "name": spec["pipelineInfo"]["name"],
        "parameters": _without_descriptions(spec["root"].get("inputDefinitions", {})),
        "outputs": _without_descriptions(spec["root"].get("outputDefinitions", {})),
        "tasks": _tasks_in(spec, spec["root"]["dag"]),
        "images": sorted({executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}),
    }



def compiled(pipeline_function) -> dict:
    """`pipeline_function` compiled, as the spec KFP writes."""
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline_function, str(path))
        return yaml.safe_load(path.read_text())


if __name__ == "__main__":  # python -m tests.integration.compiled_spec: re-record after a change meant
    for recorded, pipeline_function in RECORDED.items():
        recording = json.dumps(signature(compiled(pipeline_function)), indent=1, sort_keys=True)
        (GOLDEN / recorded).write_text(recording + "\n")
