"""Every parameter a step takes is in its cache key, unless it is listed here with the reason.

Each step's executor names its key's parameters by hand (`step_cache.open_step(params=...)`);
one left out would serve a result made with another value. This reads each component's signature
and the `params` of its executor's `open_step` call and checks that they agree.
"""

import ast
import importlib
import inspect
import textwrap

import pytest

from pipeline.definition.pipeline import STEP_NAMES

# Parameters that are not in a step's key, each with why that is right.
NOT_IN_KEY = {
    # Where Beam runs the work (DirectRunner, Dataflow), not what it produces.
    ("preprocess", "beam_args"),
    # Every run has its own, and push's result is never reused (it is not cacheable).
    ("push", "run_id"),
    # Names the run that made the report; a reused report names the run that made it first.
    ("evaluate", "run_id"),
    # They choose the cache, not the result.
    *((step, name) for step in STEP_NAMES for name in ("cache_root", "use_cache")),
}


def components():
    from components.audit.component import audit_data
    from components.evaluate.component import evaluate
    from components.extract_features.component import extract_features
    from components.fine_tune.component import fine_tune
    from components.ingest.component import ingest
    from components.preprocess.component import preprocess
    from components.push.component import push
    from components.train_head.component import train_head
    from components.transfer_lift.component import transfer_lift

    found = {"ingest": ingest, "preprocess": preprocess, "extract-features": extract_features,
             "train-head": train_head, "fine-tune": fine_tune, "transfer-lift": transfer_lift,
             "audit-data": audit_data, "evaluate": evaluate, "push": push}
    assert sorted(found) == sorted(STEP_NAMES)
    return found


def parameters_of(function) -> set[str]:
    """The component's parameters that are values (str, int, float, bool, list), not artifacts."""
    return {name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.annotation in (str, int, float, bool, list)}


def executor_of(component):
    """The `execute` function the component hands its inputs and outputs to."""
    package = component.python_func.__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.executor").execute


def key_parameters_of(function) -> set[str]:
    """The keys of the `params` dict in the executor's `open_step(...)` call."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "open_step"]
    assert len(calls) == 1, "one open_step call per executor"
    [params] = [keyword.value for keyword in calls[0].keywords if keyword.arg == "params"]
    assert isinstance(params, ast.Dict), "params must be a dict literal, so it can be read here"
    return {key.value for key in params.keys}


@pytest.mark.parametrize("step", STEP_NAMES)
def test_every_parameter_of_a_step_is_in_its_cache_key(step):
    component = components()[step]
    taken = parameters_of(component.python_func) - {name for listed_step, name in NOT_IN_KEY if listed_step == step}
    assert key_parameters_of(executor_of(component)) == taken


@pytest.mark.parametrize("step", STEP_NAMES)
def test_the_executor_takes_exactly_the_components_inputs_and_outputs(step):
    component = components()[step]
    assert (list(inspect.signature(executor_of(component)).parameters)
            == list(inspect.signature(component.python_func).parameters))
