"""`headstart run --containers`: each step in the project's image, through kfp.local's DockerRunner.

Where no Docker engine answers, podman serves a Docker-compatible API on a socket for the length
of the run (docker/build_image.sh sets podman up and builds the image). Two things kfp 2.17's
DockerRunner does not do are done here:
- it mounts only the pipeline root; a step also reads the source and the base network (mounted
  read-only) and writes the serving root and the cache (read-write), all at the same paths;
- it runs containers with auto-remove, and podman removes a fast-exiting container before its
  logs are read and its exit code taken (a crash, or a failed step reported as a success). The
  container is run without auto-remove, its logs streamed, its exit code taken, then removed.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from typing import Iterator

from kfp import local
from kfp.local import docker_task_handler

DEFAULT_PODMAN_CONF = "/var/cache/headstart-podman/containers.conf"


class ContainerEngineError(RuntimeError):
    """No Docker engine answers and podman cannot serve one."""


def _docker_answers() -> bool:
    import docker

    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable", the caller explains
        return False


@contextlib.contextmanager
def container_engine() -> Iterator[str]:
    """Makes DOCKER_HOST answer for the block: Docker if it runs, else a podman API service."""
    if _docker_answers():
        yield "docker"
        return
    podman = shutil.which("podman")
    if not podman:
        raise ContainerEngineError("no Docker engine answers and podman is not installed: run `make image` "
                                   "first (it installs podman where it can) or start Docker")
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env and os.path.isfile(DEFAULT_PODMAN_CONF):
        env["CONTAINERS_CONF"] = DEFAULT_PODMAN_CONF
    socket_dir = tempfile.mkdtemp(prefix="headstart-podman-")
    socket = os.path.join(socket_dir, "podman.sock")
    service = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = f"unix://{socket}"
    try:
        deadline = time.monotonic() + 30
        while not _docker_answers():
            if service.poll() is not None or time.monotonic() > deadline:
                raise ContainerEngineError("podman's Docker-compatible API service did not start")
            time.sleep(0.3)
        yield "podman"
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(socket_dir, ignore_errors=True)


def run_logged(client, image: str, command: list, **container_run_args) -> int:
    """Runs a container without auto-remove, streams its logs, takes its exit code, then removes it."""
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      **container_run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


def _run_and_remove(extra_volumes: dict):
    """KFP's container start, without auto-remove, with the extra mounts."""

    def run_docker_container(client, image: str, command: list, volumes: dict, **container_run_args) -> int:
        image = docker_task_handler.add_latest_tag_if_not_present(image)
        return run_logged(client, image, command, volumes={**extra_volumes, **volumes}, **container_run_args)

    return run_docker_container


def container_volumes(read_only: list[str], read_write: list[str]) -> dict:
    """Docker bind mounts for the paths a step uses besides the pipeline root, each at its own path.

    Names that are no path on this machine (an application name, `imagenet`, a gs:// URI, "") are
    left out. A path named in both lists is mounted read-write: a step must be able to write it.

    Args:
        read_only: what the steps only read: the source images, the base model and its weights.
            A step that runs someone's code cannot change them for the runs after it.
        read_write: what the steps write: the serving root and the step cache.
    """
    volumes = {}
    for mode, paths in (("ro", read_only), ("rw", read_write)):
        for path in paths:
            path = os.path.abspath(path) if path else ""
            if path and os.path.exists(path):
                volumes[path] = {"bind": path, "mode": mode}
    return volumes


def docker_runner(read_only: list[str], read_write: list[str]) -> local.DockerRunner:
    """A DockerRunner whose steps see these paths (files or directories) at the same paths.

    See `container_volumes` for the two lists. Steps run as this user so what they write on
    mounted paths belongs to the person who ran them.
    """
    docker_task_handler.run_docker_container = _run_and_remove(container_volumes(read_only, read_write))
    return local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}")
