"""The preamble every step's process runs before its work, written once.

A step's executor calls `prepare_step_process` first: progress logging on, a fast exit once KFP's
output file is written, the process's peak memory, bytes written and seconds recorded at exit, and
optional packages kept out of TensorFlow's import. It then opens its
cache (`step_cache.open_step`) with the parameters and artifacts that make its key.
"""

from components.common.runtime.fast_exit import exit_fast_once_output_written
from components.common.runtime.lean_imports import keep_scikit_learn_out
from components.common.runtime.logs import setup_step_logging
from components.common.runtime.step_resources import record_at_exit


def prepare_step_process(first_output, *, keep_scikit_learn: bool = False) -> None:
    """Logging, fast exit, resource figures and lean imports for this step's process.

    Args:
        first_output: the step's first output artifact, where its resource figures are written.
        keep_scikit_learn: True for a step that uses scikit-learn (the demo's ingest, evaluate's
            metrics); every other step keeps it from loading with Keras.
    """
    setup_step_logging()
    exit_fast_once_output_written()
    record_at_exit(first_output.path)
    if not keep_scikit_learn:
        keep_scikit_learn_out()
