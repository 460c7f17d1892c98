"""The GPU image (docker/Dockerfile.gpu), when it has been built: `make image-gpu`.

Never builds it (several GB of NVIDIA wheels): skips when the image is absent. Runs it without a
GPU and checks what holds anywhere: TensorFlow is a CUDA build, with its CUDA and cuDNN versions,
the NVIDIA runtime's variables are set, and the user is uid 1000.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from components.container_image import IMAGE

GPU_IMAGE = f"{IMAGE}-gpu"  # the Makefile's image-gpu target: $(IMAGE)-gpu
# Written by docker/build_image.sh for podman in a sandbox (runc, cgroupfs, ulimits within reach).
PODMAN_CONF = pathlib.Path("/var/cache/headstart-podman/containers.conf")
RUN_TIMEOUT_S = 300

PROBE = (
    "import json, os, tensorflow as tf\n"
    "info = tf.sysconfig.get_build_info()\n"
    "print(json.dumps({'uid': os.getuid(), 'is_cuda_build': info.get('is_cuda_build'),\n"
    "    'cuda_version': info.get('cuda_version'), 'cudnn_version': info.get('cudnn_version'),\n"
    "    'nvidia_visible_devices': os.environ.get('NVIDIA_VISIBLE_DEVICES'),\n"
    "    'nvidia_driver_capabilities': os.environ.get('NVIDIA_DRIVER_CAPABILITIES')}))\n"
)


def _engine() -> tuple[str, dict]:
    """docker when a Docker engine answers, else podman (with build_image.sh's containers.conf)."""
    env = dict(os.environ)
    command = os.environ.get("CONTAINER_ENGINE")
    if not command:
        docker_answers = shutil.which("docker") and subprocess.run(
            ["docker", "info"], capture_output=True, timeout=60).returncode == 0
        command = "docker" if docker_answers else "podman"
    if not shutil.which(command):
        pytest.skip(f"no container engine ({command} not found): build the image with `make image-gpu`")
    if command == "podman" and "CONTAINERS_CONF" not in env and PODMAN_CONF.is_file():
        env["CONTAINERS_CONF"] = str(PODMAN_CONF)
    return command, env


@pytest.fixture(scope="module")
def engine() -> tuple[str, dict]:
    command, env = _engine()
    present = subprocess.run([command, "image", "inspect", GPU_IMAGE], env=env, capture_output=True, timeout=60)
    if present.returncode != 0:
        pytest.skip(f"the GPU image {GPU_IMAGE} is not built: `make image-gpu` builds it "
                    "(several GB; not done by the test run)")
    return command, env


def test_gpu_image_is_a_cuda_build_running_as_uid_1000(engine):
    command, env = engine
    completed = subprocess.run(
        [command, "run", "--rm", "--network=none", GPU_IMAGE, "python3", "-c", PROBE],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )

    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr[-4000:]}"
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    assert found["is_cuda_build"] is True, found
    assert found["cuda_version"] and found["cudnn_version"], found
    assert found["uid"] == 1000, found
    assert found["nvidia_visible_devices"] == "all", found
    assert found["nvidia_driver_capabilities"] == "compute,utility", found
