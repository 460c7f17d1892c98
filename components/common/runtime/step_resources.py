"""What a step's process used: its peak memory, the bytes it wrote and its seconds.

Each step records these in its first output when its process exits, where the run summary reads
them (`peak_rss_mb`, `bytes_written`, `seconds` per step). They are the process's own: the peak
resident set the kernel kept (`VmHWM`), and the bytes it sent to storage (`write_bytes` less
`cancelled_write_bytes`, so a file deleted before it reached the disk does not count); a reused
step's hard-linked outputs cost it nothing. Linux only; elsewhere the figures are None.
"""

import atexit
import os
import time

from components.common.contract.artifact_files import RESOURCES_FILE
from components.common.storage import atomic_files


def _proc_fields(path: str, separator: str) -> dict[str, str]:
    """`name<separator>value` lines of a /proc file, by name; empty where it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return dict(line.split(separator, 1) for line in f.read().splitlines() if separator in line)
    except OSError:
        return {}


def peak_rss_mb() -> float | None:
    """This process's peak resident set so far, in MB (VmHWM)."""
    peak = _proc_fields("/proc/self/status", ":").get("VmHWM")
    return round(int(peak.split()[0]) / 1024, 1) if peak else None


def bytes_written() -> int | None:
    """The bytes this process has sent to storage so far."""
    found = _proc_fields("/proc/self/io", ":")
    if "write_bytes" not in found:
        return None
    return int(found["write_bytes"]) - int(found.get("cancelled_write_bytes", 0))


def record_at_exit(directory: str) -> None:
    """Writes this process's figures into `directory` when it exits; call it first thing in a step.

    Args:
        directory: the step's first output directory.
    """
    started = time.monotonic()

    def record() -> None:
        if os.path.isdir(directory):
            atomic_files.write_json(os.path.join(directory, RESOURCES_FILE),
                                    {"peak_rss_mb": peak_rss_mb(), "bytes_written": bytes_written(),
                                "seconds": round(time.monotonic() - started, 3)})

    # Registered after the fast exit's handler, so it runs before it (atexit is last in, first out).
    atexit.register(record)
