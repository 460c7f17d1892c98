"""A step process skips the interpreter's teardown only after the executor wrote its output."""

import json
import subprocess
import sys

SCRIPT = """
import atexit, sys
atexit.register(lambda: print("teardown ran"))  # registered first: runs after the fast exit's
from components.common.runtime.fast_exit import exit_fast_once_output_written
exit_fast_once_output_written()
if sys.argv[1] == "write":
    open(sys.argv[-1].split('"outputFile": "')[1].split('"')[0], "w").write("{}")
    print("step done")
elif sys.argv[1] == "fail":
    raise RuntimeError("the step failed")
else:
    sys.exit(3)
"""


def _step(tmp_path, mode: str) -> subprocess.CompletedProcess:
    executor_input = json.dumps({"outputs": {"outputFile": str(tmp_path / "executor_output.json")}})
    return subprocess.run([sys.executable, "-c", SCRIPT, mode, "--executor_input", executor_input],
                          capture_output=True, text=True)


def test_a_step_that_wrote_its_output_exits_at_once_with_status_0(tmp_path):
    done = _step(tmp_path, "write")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["step done"]  # the teardown's handler never ran


def test_a_failed_step_keeps_its_error_and_status(tmp_path):
    failed = _step(tmp_path, "fail")
    assert failed.returncode == 1
    assert "the step failed" in failed.stderr
    assert "teardown ran" in failed.stdout


def test_an_exit_status_is_kept_when_nothing_was_written(tmp_path):
    assert _step(tmp_path, "exit").returncode == 3


def test_a_process_that_is_not_a_step_is_left_alone():
    from components.common.runtime.fast_exit import _executor_output_file

    assert _executor_output_file(["python", "-m", "pytest"]) is None
    assert _executor_output_file(["x", "--executor_input", "not json"]) is None
