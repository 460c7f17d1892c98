"""Whether a local path is on Cloud Storage FUSE, where a directory rename is refused or not atomic.

Vertex AI mounts `gs://BUCKET/PATH` at `/gcs/BUCKET/PATH`; elsewhere /proc/mounts lists gcsfuse
mounts with the type `fuse.gcsfuse`. Code that commits by renaming a directory (the local step
cache) must not run there.
"""

import os
import re

MOUNTS_FILE = "/proc/mounts"
_FUSE_PREFIX = "/gcs"
_GCSFUSE_TYPE = "fuse.gcsfuse"


def _unescape_mount_field(text: str) -> str:
    # /proc/mounts writes a space, tab, newline or backslash in a path as an octal escape.
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), text)


def _gcsfuse_mount_holding(path: str) -> str | None:
    """The Cloud Storage FUSE mount point that holds `path`, where /proc/mounts lists one."""
    try:
        with open(MOUNTS_FILE, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None  # no /proc (macOS): the /gcs prefix is the only sign left
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == _GCSFUSE_TYPE:
            mount_point = _unescape_mount_field(fields[1])
            if path == mount_point or path.startswith(mount_point.rstrip("/") + "/"):
                return mount_point
    return None


def on_gcsfuse(path: str) -> tuple[str, str] | None:
    """(where the FUSE is, the gs:// URI to use instead) if a local path is on Cloud Storage FUSE."""
    given, path = path, os.path.abspath(path)
    for candidate in dict.fromkeys([path, os.path.realpath(given)]):
        mount = _gcsfuse_mount_holding(candidate)
        if mount:
            return f"a fuse.gcsfuse mount at {mount}", "gs://BUCKET/..."
    if path == _FUSE_PREFIX or path.startswith(_FUSE_PREFIX + "/"):
        # Vertex AI mounts gs://BUCKET/PATH at /gcs/BUCKET/PATH.
        return f"a {_FUSE_PREFIX}/ path", "gs://" + (path[len(_FUSE_PREFIX) + 1:] or "BUCKET/...")
    return None
