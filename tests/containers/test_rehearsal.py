"""`make rehearse`: the pipeline twice as a KFP cluster runs it, against a Cloud Storage emulator.

Runs `python -m pipeline.devtools.rehearse` as the Makefile does, on the image the container tier builds,
and checks what it printed: the first run pushed version 1 to gs://, the second reused every step
from the gs:// cache and pushed nothing; and, from the run's log, that each step's container had
only its own task directory and its inputs mounted, as a non-root user under its limits.
"""

import json
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.containers.conftest import output_of

REHEARSAL_TIMEOUT_S = 1200
_MOUNTS = re.compile(r"isolated: (\S+) in (\S+) as uid (\d+), ([\d.]+) CPUs, (\S+) memory, \d+ mounts: (.*)")


def test_rehearsal_pushes_once_then_reuses_every_step_from_gcs(engine, tmp_path):
    pipeline_root = tmp_path / "runs"
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.devtools.rehearse", "--pipeline-root", str(pipeline_root)],
        cwd=REPO_ROOT, env=engine.env, capture_output=True, text=True, timeout=REHEARSAL_TIMEOUT_S,
    )
    assert completed.returncode == 0, output_of(completed)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["isolated"] is True
    first, second = result["runs"]
    assert first["pushed_uri"] == "gs://headstart-rehearsal/serving/headstart/1"
    assert all(step["status"] == "SUCCESS" and not step["cache"]["reused"] for step in first["steps"].values())
    assert first["metrics"]["accuracy"] > 0.8 and first["blessed"]
    assert all(step["status"] == "SUCCESS" and step["cache"]["reused"] for step in second["steps"].values())
    assert second["push_reason"].startswith("already serving: version 1")
    assert second["features"] == {"extracted": 0, "reused": first["features"]["extracted"]}

    with open(first["log"], encoding="utf-8") as log:
        containers = [match.groups() for match in map(_MOUNTS.search, log) if match]
    assert sorted(step for step, *_ in containers) == sorted(first["steps"])
    for step, image, uid, cpus, memory, mounts in containers:
        assert uid == "1000" and float(cpus) >= 1 and memory.endswith("G"), step
        # Only this run's own artifacts: the task's directory and the inputs it was given.
        for mount in mounts.split(", "):
            assert mount.startswith(first["run_dir"] + "/"), (step, mount)
        assert f"{first['run_dir']}/{step}" in mounts.split(", "), step
