"""What a cluster step can reach: gs:// URIs and the volumes the deployment mounts, nothing else.

A step on a cluster runs in a pod whose local disk is thrown away when it ends and which sees
none of the submitting machine's files. A source, --exclude or --relabel file, base network,
serving root, cache root or pipeline root given as a local path would be read from, or pushed
into, that throwaway disk, so it is refused before anything is sent, naming the parameter.
Nothing here looks at whether a path exists: it would exist, or not, in the cluster, not on
this machine.
"""

import os
from typing import Mapping

from components.common.storage import gcs
from components.common.storage.step_cache import check_cache_root

# Values of these parameters that name no file.
_NOT_PATHS = {
    "source": lambda value: value.startswith(("demo:", "tfds:")),
    # "" for no --exclude or --relabel file.
    "exclude": lambda value: value == "",
    "relabel": lambda value: value == "",
    "base_model": lambda value: not value.endswith(".keras"),
    # base_network.WEIGHTS_KEYWORDS, written here too: importing it loads Keras, which this module,
    # imported by `headstart compile`, does without.
    "base_weights": lambda value: value in ("imagenet", "none"),
    "serving_root": lambda value: False,
    # "" turns the step cache off: every step runs every time.
    "cache_root": lambda value: value == "",
}
PATH_PARAMETERS = tuple(_NOT_PATHS)


def _on_volume(path: str, volume_paths: tuple[str, ...]) -> bool:
    path = os.path.normpath(path)
    return os.path.isabs(path) and any(os.path.commonpath([path, os.path.normpath(mount)]) == os.path.normpath(mount)
                                       for mount in volume_paths)


def _reachable_from_a_pod(value: str, volume_paths: tuple[str, ...]) -> bool:
    return gcs.is_gcs(value) or _on_volume(value, volume_paths)


def check_cluster_paths(values: Mapping[str, str], volume_paths: tuple[str, ...] = (),
                        pipeline_root: str | None = None) -> None:
    """Refuses every path parameter a pod cannot reach.

    Args:
        values: the run's parameters (at least those in PATH_PARAMETERS), defaults included.
        volume_paths: where the deployment mounts volumes in every step.
        pipeline_root: the run's pipeline root; None for the cluster's own default.

    Raises:
        ValueError: naming the first parameter that is a path on this machine.
    """
    where = "a gs:// URI" + (f" or a path under a mounted volume ({', '.join(volume_paths)})" if volume_paths else
                             " (or a path on a volume the deployment mounts, e.g. --cache-pvc)")
    # A FUSE cache root would be reachable on Vertex AI, yet entries could be read half-written.
    check_cache_root(values["cache_root"])
    for name in PATH_PARAMETERS:
        value = values[name]
        if not (_NOT_PATHS[name](value) or _reachable_from_a_pod(value, volume_paths)):
            raise ValueError(f"{name}={value!r} is a path on this machine, which no step of a cluster run can "
                             f"reach: give {where}")
    if pipeline_root is not None and not _reachable_from_a_pod(pipeline_root, volume_paths):
        raise ValueError(f"--pipeline-root {pipeline_root!r} is a path on this machine, which no step of a cluster "
                         f"run can reach: give {where}")
