"""Reading a compiled pipeline: its steps' tasks wherever they sit (the cluster's exit handler groups them)."""

from pipeline.pipeline import NOTIFY_STEP


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
