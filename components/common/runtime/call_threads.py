"""TensorFlow's CPU threads shared out between calls that run at once (feature extraction's)."""

import logging

import tensorflow as tf

logger = logging.getLogger(__name__)


def share_cores_between_calls(calls: int) -> int | None:
    """On CPU, gives each of `calls` concurrent calls into TensorFlow its own share of the cores.

    TensorFlow's default is one pool of a thread per core of the node that every call shares:
    two calls at once then contend for the same threads (the base network runs slower that way
    than with a share each: docs/performance.md, "Feature extraction"), and a pod with a CPU quota
    below the node's cores gets more threads than CPUs. Must run before TensorFlow's
    runtime starts (its first op); after that its pools are fixed and this leaves them as they are.

    Returns:
        The threads each call gets, or None where nothing was changed (a GPU, or a started runtime).
    """
    from components.common.runtime.cpu_quota import available_cpus

    if tf.config.list_physical_devices("GPU"):
        return None
    threads = max(1, available_cpus() // calls)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime has started: a test, or a caller that ran an op first
        logger.info("TensorFlow's runtime had started; its threads stay as they are")
        return None
    return threads
