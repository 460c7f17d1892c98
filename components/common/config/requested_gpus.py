"""A step given GPUs must use them: one that finds none fails instead of quietly running on CPU.

On a cluster the pipeline sets HEADSTART_GPUS on each step it requests GPUs for
(pipeline/definition/deployment.py). The usual ways to end up without them are a step running the CPU
image (TensorFlow without CUDA's libraries) or a node without the NVIDIA driver or device plugin;
either way a run would take hours instead of minutes, on a node billed for idle GPUs.
"""

import logging
import os

logger = logging.getLogger(__name__)

GPUS_ENV = "HEADSTART_GPUS"


def requested_gpus() -> int:
    """How many GPUs the pipeline gave this step (0 where it gave none, and outside a cluster)."""
    text = os.environ.get(GPUS_ENV, "").strip()
    try:
        return int(text or 0)
    except ValueError:
        raise ValueError(f"{GPUS_ENV}={text!r}: expected a number of GPUs") from None


def check_requested_gpus(step: str) -> None:
    """Raises unless TensorFlow sees at least as many GPUs as the step was given.

    Imports TensorFlow, so call it only where the step runs its network anyway.

    Raises:
        RuntimeError: the image's TensorFlow has no CUDA, or it finds fewer GPUs than requested.
    """
    wanted = requested_gpus()
    if not wanted:
        return
    import tensorflow as tf

    if not tf.sysconfig.get_build_info().get("is_cuda_build"):
        raise RuntimeError(f"{step} was given {wanted} GPU(s) but runs an image whose TensorFlow has no CUDA: "
                           "give the GPU steps the GPU image (--gpu-image; `make image-gpu` builds it)")
    found = tf.config.list_physical_devices("GPU")
    if len(found) < wanted:
        raise RuntimeError(f"{step} was given {wanted} GPU(s) but TensorFlow finds {len(found)}: run the GPU steps "
                           "in the GPU image (--gpu-image; `make image-gpu` builds it), whose CUDA libraries the "
                           "CPU image lacks, on a node with an NVIDIA driver for CUDA 12.5 or newer")
    logger.info("%s: using %d GPU(s) as requested", step, len(found))
