"""The container image: built by docker/build_image.sh (as `make image` does), then run.

Inside the image: the `headstart` command, the non-root user, and the ingest step's core on a
tiny folder of images mounted from the host, its output checked on the host.
"""

import dataclasses
import json
import os
import subprocess
import time

import pytest

from components.image import IMAGE
from tests.conftest import CLASS_COLORS, REPO_ROOT, make_image, write_image

BUILD_SCRIPT = REPO_ROOT / "docker" / "build_image.sh"
NO_ENGINE = 3  # build_image.sh: no container engine here, and none can be installed
BUILD_TIMEOUT_S = 1200  # a cold build on 2 cores (apt, debootstrap, TensorFlow): 4 to 6 minutes; warm: seconds
RUN_TIMEOUT_S = 300
IMAGES_PER_CLASS = 6


@dataclasses.dataclass(frozen=True)
class Engine:
    command: str  # docker or podman
    env: dict

    def run(self, *args: str, volumes: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`ENGINE run` of IMAGE; the CLI's own exit code (not through a Docker API socket)."""
        mounts = [flag for volume in volumes for flag in ("--volume", volume)]
        return subprocess.run(
            [self.command, "run", "--rm", "--network=none", *mounts, IMAGE, *args],
            env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )


def _output(completed: subprocess.CompletedProcess) -> str:
    return f"exit {completed.returncode}\nstdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    """Builds the image once through docker/build_image.sh; the engine it used, with its settings."""
    env_out = tmp_path_factory.mktemp("engine") / "engine.env"
    env = dict(os.environ, IMAGE=IMAGE, BUILD_IMAGE_ENV_OUT=str(env_out))
    started = time.monotonic()
    built = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if built.returncode == NO_ENGINE:
        pytest.skip("no container engine: no Docker engine answers, and podman is missing and cannot be "
                    f"installed here (not root, or no apt-get): {built.stderr.strip()[-300:]}")
    assert built.returncode == 0, f"docker/build_image.sh failed\n{_output(built)}"
    progress = [line for line in built.stderr.splitlines() if line.startswith("[build_image")]
    print("\n".join(progress), f"\nimage {IMAGE} built in {time.monotonic() - started:.0f} s")
    settings = dict(line.split("=", 1) for line in env_out.read_text().splitlines() if "=" in line)
    run_env = dict(os.environ)
    if settings.get("CONTAINERS_CONF"):
        run_env["CONTAINERS_CONF"] = settings["CONTAINERS_CONF"]
    return Engine(settings["ENGINE"], run_env)


def test_exit_codes_come_through(engine):
    """The checks below rely on the exit code: a failing command must not read as success."""
    assert engine.run("sh", "-c", "exit 7").returncode == 7


def test_headstart_help(engine):
    completed = engine.run("headstart", "--help")

    assert completed.returncode == 0, _output(completed)
    assert completed.stdout.startswith("usage: headstart")
    for command in ("run", "compile", "submit", "predict", "serve"):
        assert command in completed.stdout


def test_runs_as_non_root_uid_1000(engine):
    completed = engine.run("sh", "-c", "id -u; id -g; echo $HOME")

    assert completed.returncode == 0, _output(completed)
    assert completed.stdout.split() == ["1000", "1000", "/home/headstart"]


def test_ingest_step_runs_in_the_image(engine, tmp_path):
    """The ingest core, as the pipeline's ingest component calls it, on images mounted from the host."""
    data = tmp_path / "data"
    for label, color in CLASS_COLORS.items():
        for index in range(IMAGES_PER_CLASS):
            suffix = "png" if index % 2 else "jpg"
            write_image(data / "images" / label / f"{label}_{index}.{suffix}", make_image(color, seed=index))
    # The container's user is uid 1000, not the owner: it must be able to write the output here.
    for path in [data, *data.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    script = (
        "from components.ingest import core\n"
        "r = core.run(source='/data/images', output_dir='/data/out', records_per_shard=5)\n"
        "print('count', r.count, 'labels', ','.join(r.labels))\n"
    )

    completed = engine.run("python3", "-c", script, volumes=(f"{data}:/data",))

    assert completed.returncode == 0, _output(completed)
    total = IMAGES_PER_CLASS * len(CLASS_COLORS)
    assert f"count {total} labels blue,red" in completed.stdout
    out = data / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == total and manifest["source"] == "/data/images"
    assert manifest["labels"] == ["blue", "red"] and manifest["duplicates"] == 0
    assert (out / "labels.txt").read_text().split() == ["blue", "red"]
    shards = sorted(path.name for path in out.glob("examples-*.tfrecord"))
    assert shards == [f"examples-{index:05d}.tfrecord" for index in range(-(-total // 5))]
    assert all((out / name).stat().st_size > 0 for name in shards)
    assert not list(out.glob(".tmp-*"))
    # Written by the container's user, not by root.
    assert {(out / name).stat().st_uid for name in [*shards, "manifest.json"]} == {1000}
