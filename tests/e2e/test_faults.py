"""Faults lose nothing: a run killed in feature extraction and one killed in the push, then run
again, complete, reuse what was complete, and never show serving a partial version."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.unit.helpers import IMAGE_SIZE, save_tiny_base

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


@pytest.fixture
def source(tmp_path):
    for label, color in CLASS_COLORS.items():
        for index in range(24):
            write_image(tmp_path / "tree" / label / f"{label}_{index}.png", make_image(color, seed=index + 7))
    save_tiny_base(str(tmp_path / "base.keras"))
    return tmp_path


def command(tmp_path):
    return [HEADSTART, "run", "--source", str(tmp_path / "tree"), "--base-model", str(tmp_path / "base.keras"),
            "--image-size", str(IMAGE_SIZE), "--epochs", "5", "--fine-tune-mode", "off", "--model-name", "colors",
            "--serving-root", str(tmp_path / "serving"), "--pipeline-root", str(tmp_path / "runs"),
            "--summary", str(tmp_path / "s.json")]


def run_until_killed(tmp_path, marker: str, delay: float, *options: str) -> str:
    """Starts a run and kills it (SIGKILL, the whole process group) `delay` s after `marker` is shown."""
    process = subprocess.Popen([*command(tmp_path), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    shown = []
    for line in process.stdout:
        shown.append(line)
        if marker in line:
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert any(marker in line for line in shown), "".join(shown)
    return "".join(shown)


def watch_serving(model_dir: str, seen: list, stop: threading.Event) -> None:
    """Polls the serving root as a model server does: every numeric version must be whole."""
    while not stop.is_set():
        for name in os.listdir(model_dir) if os.path.isdir(model_dir) else []:
            if name.isdigit():
                version = os.path.join(model_dir, name)
                seen.append((name, os.path.isfile(os.path.join(version, "saved_model.pb"))
                             and os.path.isdir(os.path.join(version, "variables"))))
        time.sleep(0.05)


def test_runs_killed_in_extraction_and_in_the_push_complete_when_run_again(source):
    tmp_path = source
    # One second into the step: it is still starting. A fresh step process's TensorFlow import alone
    # takes longer; a step forked warm would have finished these few images by then.
    run_until_killed(tmp_path, "[3/9] extract-features", 1, "--cold-steps")
    extraction_cache = tmp_path / "runs" / "cache" / "extract-features"
    assert not extraction_cache.is_dir() or not [name for name in os.listdir(extraction_cache) if len(name) == 64]

    seen, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_serving, args=(str(tmp_path / "serving" / "colors"), seen, stop))
    watcher.start()
    try:
        run_until_killed(tmp_path, "[9/9] push", 4)
        completed = subprocess.run(command(tmp_path), capture_output=True, text=True, timeout=600)
    finally:
        stop.set()
        watcher.join()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "s.json").read_text())

    # The killed run finished extraction and training before it died: they are reused now.
    for step in ("ingest", "preprocess", "extract-features", "train-head", "evaluate"):
        assert summary["steps"][step]["cache"]["reused"], step
    assert summary["pushed_uri"] == str(tmp_path / "serving" / "colors" / "1") or \
        summary["push_reason"].startswith("already serving: version 1")
    assert sorted(name for name in os.listdir(tmp_path / "serving" / "colors") if name.isdigit()) == ["1"]
    assert seen and all(whole for _, whole in seen), "a server polling the serving root saw a partial version"
