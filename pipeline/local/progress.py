"""Progress a person can follow while kfp.local runs the pipeline.

kfp.local prints its own log lines and every step's whole output to stdout. `ProgressView`
stands in for stdout during a run: it writes everything to the run's log file and shows on the
terminal only the step transitions and the steps' progress lines, timing each step.
"""

import re
import time
from dataclasses import dataclass, field
from typing import TextIO

from components.common.runtime.logs import PROGRESS_PREFIX

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
# How many of a step's last output lines are kept to explain a failure.
_TAIL_LINES = 40


@dataclass
class StepRecord:
    """One step's status and duration as seen in kfp.local's output."""

    status: str = "RUNNING"
    seconds: float = 0.0
    started: float = field(default=0.0, repr=False)


class ProgressView:
    """A file-like stdout replacement that logs everything and shows progress."""

    def __init__(self, log: TextIO, terminal: TextIO, step_names: list[str], verbose: bool = False):
        self._log = log
        self._terminal = terminal
        self._step_names = step_names
        self._verbose = verbose
        self._buffer = ""
        self.steps: dict[str, StepRecord] = {}
        self.tail: list[str] = []

    # The file-like interface kfp's logging handler and print() use.
    def write(self, text: str) -> int:
        """Logs the text and acts on each line it completes; returns its length, as a file's write does."""
        self._log.write(text)
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._on_line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        """Flushes the log file and the terminal."""
        self._log.flush()
        self._terminal.flush()

    def isatty(self) -> bool:
        """False, as for the log file everything goes to."""
        return False

    def _show(self, text: str) -> None:
        self._terminal.write(text + "\n")
        self._terminal.flush()

    def _on_line(self, line: str) -> None:
        if self._verbose:
            self._show(line)
        started = _STARTED.search(line)
        finished = _FINISHED.search(line)
        if started:
            name = started.group(1)
            self.steps[name] = StepRecord(started=time.monotonic())
            self.tail = []
            position = self._step_names.index(name) + 1 if name in self._step_names else "?"
            if not self._verbose:
                self._show(f"[{position}/{len(self._step_names)}] {name} ...")
        elif finished:
            name, status = finished.groups()
            record = self.steps.setdefault(name, StepRecord(started=time.monotonic()))
            record.status = status
            record.seconds = round(time.monotonic() - record.started, 2)
            if not self._verbose:
                mark = "done" if status == "SUCCESS" else status
                self._show(f"      {name}: {mark} in {record.seconds:.1f} s")
        else:
            self.tail = (self.tail + [line])[-_TAIL_LINES:]
            stripped = line.strip()
            if stripped.startswith(PROGRESS_PREFIX) and not self._verbose:
                self._show("      " + stripped[len(PROGRESS_PREFIX):].strip())

    def failure_excerpt(self) -> str:
        """The end of the failing step's output: its traceback's last lines."""
        lines = [line.strip() for line in self.tail if line.strip()]
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        return errors[-1] if errors else "\n".join(lines[-5:])

