"""`headstart run --containers --isolated`: every step as a KFP cluster runs it, on this machine.

A pod that KFP starts for a task has the image the compiled pipeline names for that task, runs
its exact command and arguments as the image's (non-root) user, under the task's CPU and memory
limits, and sees no file of any other machine: the launcher hands it its input artifacts and
collects its outputs. Everything else (source, base network, serving root, step cache,
champion) it reaches over the network.

kfp.local's DockerRunner does the first two. This module does the rest for each container:
- it mounts only that task's own directory (its outputs and executor output) and, read-only,
  each of its input artifacts, at the paths the executor input names, in place of the whole
  pipeline root;
- it leaves the image's user in place, and makes the task directory that user's;
- it applies the deployment's CPU and memory limits (CPUs capped at this machine's count);
- it runs on the host's network (an emulator on a loopback port stands in for Cloud Storage)
  and passes on only the environment that says where that storage is.
A run whose parameters name a path on this machine is refused before it starts
(pipeline/cluster/cluster_paths.py), as `submit` refuses it.
"""

import json
import os
import re

from kfp import local
from kfp.local import docker_task_handler

from pipeline.definition.deployment import Deployment
from pipeline.local.containers import run_logged

# What a step needs to find remote storage; credentials come from the cluster, not from here.
PASSED_ENVIRONMENT = ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "HEADSTART_GCS_RETRY_SECONDS",
                      "TF_CPP_MIN_LOG_LEVEL")
_QUANTITY_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                   "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(|[KMGT]i?)")


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("8G", "512Mi") in bytes."""
    match = _QUANTITY.fullmatch(quantity)
    if not match:
        raise ValueError(f"not a Kubernetes memory quantity: {quantity!r}")
    return int(float(match.group(1)) * _QUANTITY_UNITS[match.group(2)])


def _argument(command: list[str], flag: str) -> str:
    try:
        return command[command.index(flag) + 1]
    except (ValueError, IndexError):
        raise ValueError(f"the task's command has no {flag} (not a KFP Python component?)") from None


def _artifact_uris(section: dict) -> list[str]:
    return [artifact["uri"] for entry in section.get("artifacts", {}).values() for artifact in entry["artifacts"]]


def task_mounts(executor_input: dict, owner: tuple[int, int]) -> dict[str, dict]:
    """The mounts a pod would have: its own task directory, and each input artifact read-only.

    The task directory is created here and given to `owner` (uid, gid), the image's user, or,
    where this process may not give it away, opened to every user.
    """
    outputs = executor_input["outputs"]
    task_dirs = {os.path.dirname(uri) for uri in _artifact_uris(outputs)} | {os.path.dirname(outputs["outputFile"])}
    mounts = {}
    for directory in sorted(task_dirs):
        os.makedirs(directory, exist_ok=True)
        try:
            os.chown(directory, *owner)
        except PermissionError:
            # Not root here: the container's user can still write where everyone may.
            os.chmod(directory, 0o777)
        mounts[directory] = {"bind": directory, "mode": "rw"}
    for uri in _artifact_uris(executor_input["inputs"]):
        if not os.path.exists(uri):
            raise FileNotFoundError(f"input artifact {uri} was not written by the task that makes it")
        mounts[uri] = {"bind": uri, "mode": "ro"}
    return mounts


def _image_user(client, image: str) -> tuple[int, int]:
    import docker

    try:
        user = client.images.get(image).attrs["Config"].get("User") or "0:0"
    except docker.errors.ImageNotFound:
        raise FileNotFoundError(f"image {image} is not here: build it with `make image`") from None
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or uid == "0":
        raise ValueError(f"image {image} runs as user {user!r}: a cluster pod runs it as a numeric non-root user")
    return int(uid), int(gid or uid)


def _isolated_container(deployment: Deployment, environment: dict[str, str]):
    """KFP's container start, replaced by one that gives the container only what a pod has."""

    def run_docker_container(client, image: str, command: list, volumes: dict, **container_run_args) -> int:
        image = docker_task_handler.add_latest_tag_if_not_present(image)
        step = _argument(command, "--function_to_execute").replace("_", "-")
        wanted = deployment.resources[step]
        owner = _image_user(client, image)
        mounts = task_mounts(json.loads(_argument(command, "--executor_input")), owner)
        cpus = min(float(wanted.cpu), float(os.cpu_count() or 1))
        task_environment = {**environment, **container_run_args.pop("environment", {})}
        print(f"isolated: {step} in {image} as uid {owner[0]}, {cpus:g} CPUs, {wanted.memory} memory, "
              f"{len(mounts)} mounts: {', '.join(sorted(mounts))}")
        return run_logged(client, image, command, volumes=mounts, network_mode="host", environment=task_environment,
                          nano_cpus=int(cpus * 1e9), mem_limit=memory_bytes(wanted.memory), **container_run_args)

    return run_docker_container


def isolated_runner(deployment: Deployment) -> local.DockerRunner:
    """A DockerRunner whose containers each see only what a KFP pod of `deployment` would."""
    environment = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    docker_task_handler.run_docker_container = _isolated_container(deployment, environment)
    return local.DockerRunner()
