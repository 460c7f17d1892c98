"""A local run's hooks into kfp.local's internals still fit the installed kfp.

pipeline/local/warm_steps.py replaces kfp.local's private `subprocess_task_handler.environment`, and
pipeline/local/local_run.py silences two of kfp.local's warnings by their text. Neither is kfp's
public API, so a kfp release may change them without notice; these tests fail when it does, rather
than every local run breaking (or printing a warning per step) with no test failing.
"""

import ast
import contextlib
import inspect
import re
import shlex
import sys
import textwrap
import warnings

import kfp
from kfp import dsl, local
from kfp.local import config as local_config
from kfp.local import subprocess_task_handler

from components.container_image import IMAGE
from components.ingest.component import ingest
from pipeline.definition.deployment import Deployment
from pipeline.local.local_run import KFP_WARNINGS_SILENCED, silence_kfp_warnings
from pipeline.local.warm_steps import warm_steps

ENVIRONMENT = subprocess_task_handler.environment
CHANGED = (f"kfp.local's internals changed (kfp {kfp.__version__}): pipeline/local/warm_steps.py, which "
           "replaces kfp.local.subprocess_task_handler.environment, must follow. ")
# What kfp's handler passes `environment`, all by keyword: warm_steps' replacement takes `use_venv`
# and hands the rest to the original.
ENVIRONMENT_PARAMETERS = ["use_venv", "runner_config", "has_pip_install"]


def _environment_blocks() -> list[tuple[ast.With, ast.withitem]]:
    """The `with environment(...) as ...` blocks of SubprocessTaskHandler.run, parsed from its source."""
    source = textwrap.dedent(inspect.getsource(subprocess_task_handler.SubprocessTaskHandler.run))
    return [(node, item) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.With) for item in node.items
            if isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Name)
            and item.context_expr.func.id == "environment"]


def test_kfp_local_still_looks_up_and_calls_the_environment_that_warm_steps_replaces():
    assert callable(getattr(subprocess_task_handler, "environment", None)), (
        CHANGED + "subprocess_task_handler.environment is gone.")
    parameters = list(inspect.signature(ENVIRONMENT).parameters)
    assert parameters == ENVIRONMENT_PARAMETERS, (
        CHANGED + f"environment's parameters are now {parameters}, not {ENVIRONMENT_PARAMETERS}.")
    # Looked up by its module-level name when each step runs, so replacing the module's attribute works.
    blocks = _environment_blocks()
    assert len(blocks) == 1, (
        CHANGED + f"SubprocessTaskHandler.run has {len(blocks)} `with environment(...)` blocks, not one.")
    [(block, item)] = blocks
    call = item.context_expr
    keywords = [keyword.arg for keyword in call.keywords]
    assert not call.args and keywords == ENVIRONMENT_PARAMETERS, (
        CHANGED + f"SubprocessTaskHandler.run now calls {ast.unparse(call)}.")
    # What it yields is the Python that replaces each `python3` of the step's command.
    assert isinstance(item.optional_vars, ast.Name), CHANGED + "the handler no longer binds what environment yields."
    executable = item.optional_vars.id
    replaced = [node for node in ast.walk(block) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "replace_python_executable"
                and any(isinstance(arg, ast.Name) and arg.id == executable for arg in node.args)]
    assert replaced, CHANGED + f"the handler no longer passes {executable!r} to replace_python_executable."
    # For use_venv=False, the case warm_steps replaces, it yields this process's Python.
    with ENVIRONMENT(use_venv=False, runner_config=local.SubprocessRunner(use_venv=False),
                     has_pip_install=False) as python:
        assert python == sys.executable, CHANGED + f"environment(use_venv=False) yields {python!r}."


def _step_command(monkeypatch, runner: local.SubprocessRunner, tmp_path) -> list[str]:
    """The command kfp.local's handler would start for the ingest step, with `runner`."""
    started = []

    def run_local_subprocess(full_command, env_vars=None):
        started.append(full_command)
        return 0

    monkeypatch.setattr(subprocess_task_handler, "run_local_subprocess", run_local_subprocess)
    container = ingest.component_spec.implementation.container
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the image is not a Python one: the warning the third test checks
        handler = subprocess_task_handler.SubprocessTaskHandler(
            image=container.image, full_command=[*container.command, *container.args],
            pipeline_root=str(tmp_path), runner=runner)
    handler.run()
    [command] = started
    return command


def test_warm_steps_starts_steps_through_the_fork_client_and_gives_kfp_back_its_environment(monkeypatch, tmp_path):
    original_calls = []

    @contextlib.contextmanager
    def original(use_venv, **kwargs):
        original_calls.append({"use_venv": use_venv, **kwargs})
        yield "/a/venv/bin/python"

    monkeypatch.setattr(subprocess_task_handler, "environment", original)
    plain, venv = local.SubprocessRunner(use_venv=False), local.SubprocessRunner(use_venv=True)
    log_path = tmp_path / "fork-server.log"
    client = shlex.join([sys.executable, "-m", "pipeline.local.step_fork_client"])
    with warm_steps(str(log_path)):
        assert log_path.exists()  # the server's output goes there: it was started
        warm = " ".join(_step_command(monkeypatch, plain, tmp_path))
        assert not original_calls
        venv_command = " ".join(_step_command(monkeypatch, venv, tmp_path))
    match = re.search(rf"_KFP_RUNTIME=true {re.escape(client)} (\S+fork\.sock) -m kfp\.dsl\.executor_main ", warm)
    assert match, CHANGED + f"inside warm_steps, a step's command is {warm!r}."
    assert "python3" not in warm
    assert original_calls == [{"use_venv": True, "runner_config": venv, "has_pip_install": False}]
    assert "_KFP_RUNTIME=true /a/venv/bin/python -m kfp.dsl.executor_main " in venv_command
    assert subprocess_task_handler.environment is original
    monkeypatch.undo()
    assert subprocess_task_handler.environment is ENVIRONMENT
    # Outside warm_steps, kfp's own environment again: this process's Python, no fork client.
    cold = " ".join(_step_command(monkeypatch, plain, tmp_path))
    assert f"_KFP_RUNTIME=true {sys.executable} -m kfp.dsl.executor_main " in cold
    assert "step_fork_client" not in cold


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def _does_nothing():
    pass


@dsl.pipeline(name="kfp-warnings")
def _one_step():
    # The image and the settings that headstart's steps have in a local run.
    Deployment(retries=0, exit_notification=False).apply("ingest", _does_nothing())


def test_the_warnings_a_local_run_silences_are_the_ones_kfp_local_emits(monkeypatch, tmp_path):
    monkeypatch.setattr(local_config.LocalExecutionConfig, "instance", None)  # kfp.local's, as it was
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=True)
    with warnings.catch_warnings(record=True) as emitted:
        warnings.simplefilter("always")
        _one_step()
    texts = [(str(warning.message), warning.category) for warning in emitted]
    for pattern, category in KFP_WARNINGS_SILENCED:
        # As warnings.filterwarnings matches: at the start of the text, ignoring case, subclasses too.
        assert any(re.match(pattern, text, re.IGNORECASE) and issubclass(emitted_category, category)
                   for text, emitted_category in texts), (
            f"kfp {kfp.__version__} no longer emits a {category.__name__} matching {pattern!r} when a step runs "
            f"locally (it emitted {texts}): KFP_WARNINGS_SILENCED in pipeline/local/local_run.py must follow.")
    # And the filters local_run installs do silence them, and only them.
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        silence_kfp_warnings()
        for warning in emitted:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    silenced = [text for text, category in texts if any(
        re.match(pattern, text, re.IGNORECASE) and issubclass(category, wanted)
        for pattern, wanted in KFP_WARNINGS_SILENCED)]
    through = [str(warning.message) for warning in shown]
    assert not set(silenced) & set(through), f"silence_kfp_warnings() let these through: {through}"
    assert len(through) == len(texts) - len(silenced)
