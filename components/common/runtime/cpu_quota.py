"""How many CPUs this process may use: the container's CPU quota, not the node's core count.

`os.cpu_count()` is the node's cores: 32 on a large node, where a pod limited to 2 CPUs that
starts 32 decoding threads gets throttled and holds 32 full-size images in memory at once.
The quota comes from the cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`)
and the CPU affinity mask, whichever allows fewer.
"""

import math
import os

_CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
_CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_cpu_limit(v2_path: str = _CGROUP_V2, v1_paths: tuple[str, str] = _CGROUP_V1) -> float | None:
    """The cgroup's CPU quota in CPUs (e.g. 1.5), or None when there is none."""
    v2 = _read(v2_path)
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota, period = (_read(path) for path in v1_paths)
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def available_cpus() -> int:
    """The CPUs this process may use, at least 1: its affinity, capped by the cgroup's quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)
