"""The command line: invalid parameters fail before any step runs, naming the parameter."""

import os
import subprocess
import sys

import pytest

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--epochs", "-1"], "epochs"),
        (["--base-model", "alexnet"], "base_model"),
        (["--accuracy-threshold", "1.5"], "accuracy_threshold"),
        (["--base-model", "mobilenet", "--image-size", "8"], "image_size"),
        (["--source", "/nonexistent/headstart-images"], "source"),
    ],
)
def test_invalid_parameters_fail_before_any_step(tmp_path, flags, name):
    source = tmp_path / "images"
    (source / "a").mkdir(parents=True)
    completed = subprocess.run(
        [HEADSTART, "run", "--source", str(source), "--pipeline-root", str(tmp_path / "runs"), *flags],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 2, completed.stderr
    assert "invalid parameter" in completed.stderr and name in completed.stderr
    run_dirs = [d for d in os.listdir(tmp_path / "runs") if d.startswith("headstart-")]
    assert run_dirs == []  # no step ran


@pytest.mark.parametrize(
    "flags, field, keyword",
    [
        (["--base-weights", "imagenet"], "base_weights", "imagenet"),
        (["--base-weights", "none"], "base_weights", "none"),
        (["--base-model", "mobilenet"], "base_model", "mobilenet"),
        (["--source", "demo:digits"], "source", "demo:digits"),
        (["--source", "tfds:beans"], "source", "tfds:beans"),
        (["--source", "gs://bucket/photos"], "source", "gs://bucket/photos"),
    ],
)
def test_keywords_stay_keywords_whatever_the_working_directory_holds(tmp_path, monkeypatch, flags, field, keyword):
    from pipeline.cli import _config_from_args, build_parser

    (tmp_path / keyword).mkdir(parents=True)  # gs://bucket/photos is the folder gs:/bucket/photos
    (tmp_path / "weights.h5").write_text("")
    monkeypatch.chdir(tmp_path)
    common = ["run", "--source", "tfds:beans", "--base-model", "mobilenet", "--pipeline-root", str(tmp_path / "runs")]

    config = _config_from_args(build_parser().parse_args([*common, *flags]))
    assert getattr(config, field) == keyword
    # A value that is no keyword and names a file here is still that file, wherever a step runs.
    config = _config_from_args(build_parser().parse_args([*common, "--base-weights", "weights.h5"]))
    assert config.base_weights == str(tmp_path / "weights.h5")


def test_help_lists_the_commands():
    completed = subprocess.run([HEADSTART, "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    for command in ("run", "compile", "predict"):
        assert command in completed.stdout


def test_run_option_defaults_are_the_pipelines():
    """The CLI keeps its own defaults (building the parser must not import TensorFlow); they must
    stay the typed config's."""
    from pipeline.cli import build_parser
    from pipeline.config import PipelineConfig

    args = vars(build_parser().parse_args(["run"]))
    config = PipelineConfig()
    renamed = {"fine_tune": "fine_tune_mode"}
    # Unset on purpose: the demo brings its own; otherwise the config's defaults apply.
    unset = {"base_model", "image_size", "epochs", "patience", "transfer_lift"}
    compared = 0
    for option, value in args.items():
        field = renamed.get(option, option)
        if option in unset:
            assert value is None, option
        elif hasattr(config, field):
            expected = getattr(config, field)
            assert (list(value) if isinstance(expected, tuple) else value) == (
                list(expected) if isinstance(expected, tuple) else expected), option
            compared += 1
    assert compared >= 18


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--source", "gs://b/photos", "--base-model", "mobilenet", "--cache-dir", "gs://b/cache"],
         "serving_root='"),
        # The demo's base is pretrained into a file here: refused before it is made.
        (["--serving-root", "gs://b/s", "--cache-dir", "gs://b/cache"], "base_model: the demo's base network"),
    ],
)
def test_an_isolated_run_refuses_host_paths_before_any_step(tmp_path, flags, named):
    """A rehearsal of a cluster run: a parameter only this machine can see fails at once, named."""
    completed = subprocess.run(
        [HEADSTART, "run", "--containers", "--isolated", "--pipeline-root", str(tmp_path / "runs"), *flags],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 2, completed.stderr
    assert named in completed.stderr and "Traceback" not in completed.stderr
    assert not [d for d in os.listdir(tmp_path / "runs") if d.startswith("headstart-")]
