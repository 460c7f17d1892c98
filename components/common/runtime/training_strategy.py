"""Where a head trains: on every GPU the process sees, in mixed precision, or on the CPU."""

import logging

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)


def choose_strategy() -> tf.distribute.Strategy:
    """A strategy over the GPUs this process sees; sets mixed precision when there are any."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        logger.info("no GPU found: training the head on CPU in float32")
        return tf.distribute.get_strategy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) == 1:
        logger.info("training the head on 1 GPU with mixed precision")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    logger.info("training the head on %d GPUs (MirroredStrategy) with mixed precision", len(gpus))
    return tf.distribute.MirroredStrategy()
