"""The command line: invalid parameters fail before any step runs, naming the parameter."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

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
    run_dirs = [d for d in os.listdir(tmp_path / "runs") if d.startswith("run-")]
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
    from pipeline.cli.commands import _config_from_args, build_parser

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


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--source", "gs://b/photos", "--base-model", "mobilenet", "--cache-root", "gs://b/cache"],
         "serving_root='"),
        # The demo's base is pretrained into a file here: refused before it is made.
        (["--serving-root", "gs://b/s", "--cache-root", "gs://b/cache"], "base_model: the demo's base network"),
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


NOTHING_LISTENS = "http://127.0.0.1:9"  # the discard port: refused at once on a machine that runs no discard service


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["submit", "--param", "source=gs://b/photos", "--param", "serving_root=gs://m/s"],
        ["schedule", "--cron", "0 3 * * 1", "--param", "source=gs://b/photos", "--param", "serving_root=gs://m/s"],
    ],
    ids=lambda command: command[0],
)
def test_a_cluster_command_without_an_endpoint_exits_2_with_one_line(command):
    """As a person types it, with valid parameters: the only thing wrong is that nothing answers."""
    completed = subprocess.run([HEADSTART, *command, "--host", NOTHING_LISTENS],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert (f"headstart {command[0]}: cannot reach the KFP API at {NOTHING_LISTENS}: Connection refused"
            in completed.stderr.splitlines())
    assert "Traceback" not in completed.stderr


def test_an_endpoint_that_answers_with_an_http_error_exits_2_with_its_status_and_message(capsys):
    """A KFP API that is up but refuses the request (here: listing runs) names the status and KFP's message."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipeline.cli import commands

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):
            healthy = self.path.endswith("/healthz")
            body = json.dumps({"multi_user": False} if healthy else
                              {"code": 7, "message": "user x may not list runs\nsecond line"}).encode()
            self.send_response(200 if healthy else 403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert commands.main(["runs", "--host", host]) == 2
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert f"headstart runs: the KFP API at {host} answered HTTP 403 Forbidden: user x may not list runs\n" in err
    assert "Traceback" not in err


def test_a_one_class_source_fails_in_ingest_at_once_naming_the_class(tmp_path):
    from tests.conftest import make_image, write_image

    for index in range(6):
        write_image(tmp_path / "images" / "cats" / f"{index}.jpg", make_image((200, 60, 40), seed=index))
    completed = subprocess.run(
        [HEADSTART, "run", "--source", str(tmp_path / "images"), "--pipeline-root", str(tmp_path / "runs"),
         "--serving-root", str(tmp_path / "serving"), "--summary", str(tmp_path / "s.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "holds images of one class only ('cats', 6 images)" in completed.stderr
    log = open(completed.stderr.split("The whole output is in ")[1].strip(), encoding="utf-8").read()
    # Ingest ran once: a data error is not retried (kfp.local retries every failure alike).
    assert log.count("ingest: 6 images") <= 1 and "retry" not in log.lower(), log[-2000:]


@pytest.mark.parametrize("flags, expected", [
    (["--epoch", "5"], "unrecognized arguments: --epoch (did you mean --epochs?)"),
    (["--base-modle", "vgg16"], "unrecognized arguments: --base-modle (did you mean --base-model"),
])
def test_an_abbreviated_or_misspelled_option_gets_the_subcommands_usage_and_the_nearest_names(flags, expected, capsys):
    from pipeline.cli.commands import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", *flags])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and expected in err
    assert err.startswith("usage: headstart run ") and "headstart run: error:" in err


def test_a_plain_compile_writes_into_the_working_directory_only(tmp_path, monkeypatch):
    from pipeline.cli import commands

    checkout_yaml = os.path.join(REPO_ROOT, "pipeline", "pipeline.yaml")
    before = os.stat(checkout_yaml).st_mtime_ns
    monkeypatch.chdir(tmp_path)
    assert commands.main(["compile"]) == 0
    assert (tmp_path / "pipeline.yaml").is_file() and os.stat(checkout_yaml).st_mtime_ns == before
