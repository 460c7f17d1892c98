"""The container tier's one image build, shared by every test that runs the image."""

import dataclasses
import os
import subprocess
import time

import pytest

from components.container_image import IMAGE
from tests.conftest import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "docker" / "build_image.sh"
NO_ENGINE = 3  # build_image.sh: no container engine here, and none can be installed
BUILD_TIMEOUT_S = 1200  # a cold build on 2 cores (apt, debootstrap, TensorFlow): 4 to 6 minutes; warm: seconds
RUN_TIMEOUT_S = 300


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


def output_of(completed: subprocess.CompletedProcess) -> str:
    return f"exit {completed.returncode}\nstdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"


@pytest.fixture(scope="session")
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
    assert built.returncode == 0, f"docker/build_image.sh failed\n{output_of(built)}"
    progress = [line for line in built.stderr.splitlines() if line.startswith("[build_image")]
    print("\n".join(progress), f"\nimage {IMAGE} built in {time.monotonic() - started:.0f} s")
    settings = dict(line.split("=", 1) for line in env_out.read_text().splitlines() if "=" in line)
    run_env = dict(os.environ)
    if settings.get("CONTAINERS_CONF"):
        run_env["CONTAINERS_CONF"] = settings["CONTAINERS_CONF"]
    return Engine(settings["ENGINE"], run_env)
