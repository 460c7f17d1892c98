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

from components.common import storage

RESOURCES_FILE = ".headstart-resources.json"
# A process that did this step's work for it (a warm worker): its peak and its bytes written.
_helpers: list[tuple[float | None, int | None]] = []


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


def add_helper_process(peak_mb: float | None, written: int | None) -> None:
    """Counts a process that worked for this step: the step's peak is the larger, its bytes the sum."""
    _helpers.append((peak_mb, written))


def _step_figures() -> tuple[float | None, int | None]:
    processes = [(peak_rss_mb(), bytes_written()), *_helpers]
    peaks = [peak for peak, _ in processes if peak is not None]
    writes = [written for _, written in processes if written is not None]
    return (max(peaks) if peaks else None), (sum(writes) if writes else None)


def record_at_exit(directory: str) -> None:
    """Writes this process's figures into `directory` when it exits; call it first thing in a step.

    Args:
        directory: the step's first output directory.
    """
    started = time.monotonic()

    def record() -> None:
        if os.path.isdir(directory):
            peak, written = _step_figures()
            storage.write_json(os.path.join(directory, RESOURCES_FILE),
                               {"peak_rss_mb": peak, "bytes_written": written,
                                "seconds": round(time.monotonic() - started, 3)})

    # Registered after the fast exit's handler, so it runs before it (atexit is last in, first out).
    atexit.register(record)
