"""The local runner finds its own run's directory, whatever else runs in the same pipeline root.

The pipeline here is a one-step stand-in, run for real by kfp.local, so that the runner's
bookkeeping is tested in seconds rather than with TensorFlow steps.
"""

import io
import os

from kfp import dsl

from pipeline.definition.config import PipelineConfig
from pipeline.definition.pipeline import PIPELINE_NAME
from pipeline.local import local_run


@dsl.component(base_image="python:3.11")
def start_another_run_meanwhile(pipeline_root: str, marker: dsl.Output[dsl.Artifact]):
    import os

    # What a second run or an audit, started in the same pipeline root meanwhile, leaves there.
    os.makedirs(os.path.join(pipeline_root, "headstart-pipeline-9999-12-31-23-59-59-999999", "ingest"))
    os.makedirs(marker.path)
    with open(os.path.join(marker.path, "mine.txt"), "w") as f:
        f.write("this run")


def test_a_run_takes_its_own_directory_when_another_starts_in_the_same_root(tmp_path, monkeypatch):
    root = tmp_path / "runs"

    @dsl.pipeline(name=PIPELINE_NAME)
    def one_step(source: str):
        start_another_run_meanwhile(pipeline_root=str(root)).set_caching_options(False)

    monkeypatch.setattr(local_run, "build_pipeline", lambda deployment: one_step)
    outcome = local_run.run_locally(PipelineConfig(source=str(tmp_path)), str(root), terminal=io.StringIO(),
                                    cold_steps=True)
    run_dir = outcome.summary["run_dir"]
    assert run_dir and os.path.commonpath([run_dir, str(root)]) == str(root)
    task_dirs = os.listdir(run_dir)
    assert task_dirs == ["start-another-run-meanwhile"], f"{run_dir} holds {task_dirs}, another run's directory"
