"""What phase two is asked to do, and whether it runs: decided without importing TensorFlow.

A step whose work is skipped should not pay TensorFlow's import (several seconds per process on
a small machine), so the settings, the skip decision and the pass-through live here, apart from
the training in core.py.
"""

import glob
import logging
import os
import shutil
from dataclasses import asdict, dataclass

from components.common.config.head_config import HeadConfig
from components.common.config.knobs import knob, same_knob
from components.common.contract.artifact_files import FINE_TUNE_INFO
from components.common.storage import atomic_files

MODES = ("auto", "on", "off")
NO_GPU_REASON = "auto: no GPU found, so the frozen-base model stands (fine-tuning on CPU is slow)"


def gpu_device_files() -> bool:
    """Whether this machine has NVIDIA device files: without them TensorFlow sees no GPU either."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def gpus_tensorflow_sees() -> int:
    """How many GPUs TensorFlow finds: what `auto` decides by, so what its cache key records.

    Without NVIDIA device files the answer is 0 and TensorFlow is not imported (seconds saved on
    every CPU run); with them, a node can still lack the driver or the CUDA libraries, so ask it.
    """
    if not gpu_device_files():
        return 0
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class FineTuneConfig:
    """How the second phase runs (each knob's help says what it does).

    Attributes:
        fine_tune_patience: epochs without eval-loss improvement before stopping.
    """

    fine_tune_mode: str = knob("auto", "second phase: unfreeze the top of the base and train end to end on "
                               "lightly augmented images at a low learning rate; auto runs it when a GPU is found",
                               choices=MODES)
    fine_tune_fraction: float = knob(0.2, "share of the base's weighted layers, from the top, that fine-tuning "
                                     "trains")
    fine_tune_learning_rate: float = knob(1e-5, "fine-tuning's learning rate; low, so the pretrained weights "
                                          "move little")
    fine_tune_epochs: int = knob(5, "the most fine-tuning epochs")
    fine_tune_patience: int = 2
    batch_size: int = same_knob(HeadConfig, "batch_size")
    seed: int = same_knob(HeadConfig, "seed")

    def __post_init__(self):
        if self.fine_tune_mode not in MODES:
            raise ValueError(f"fine_tune_mode must be one of {MODES}, got {self.fine_tune_mode!r}")
        if not 0 < self.fine_tune_fraction <= 1:
            raise ValueError(f"fine_tune_fraction must be in (0, 1], got {self.fine_tune_fraction}")
        if self.fine_tune_learning_rate <= 0:
            raise ValueError(f"fine_tune_learning_rate must be positive, got {self.fine_tune_learning_rate}")
        if self.fine_tune_epochs < 1:
            raise ValueError(f"fine_tune_epochs must be at least 1, got {self.fine_tune_epochs}")

    def skip_reason(self) -> str | None:
        """Why phase two will not run, as far as can be told without TensorFlow; None if it may."""
        if self.fine_tune_mode == "off":
            return "off"
        if self.fine_tune_mode == "auto" and not gpu_device_files():
            return NO_GPU_REASON
        return None


@dataclass(frozen=True)
class FineTuneResult:
    """Whether phase two ran, and the eval accuracy before and after it."""

    ran: bool
    reason: str
    eval_accuracy_before: float | None = None
    eval_accuracy_after: float | None = None
    # Which model the step passes on: "fine-tuned", or "frozen" (phase one's) when phase two did
    # not run or scored lower on eval.
    model_kept: str = "frozen"


def copy_unchanged(base_model_path: str, head_model_path: str, base_out: str, head_out: str) -> None:
    """Copies phase one's base and head directories to the step's outputs."""
    shutil.copytree(os.path.dirname(base_model_path), base_out, dirs_exist_ok=True)
    shutil.copytree(os.path.dirname(head_model_path), head_out, dirs_exist_ok=True)


def pass_through(base_model_path: str, head_model_path: str, base_out: str, head_out: str,
                 reason: str) -> FineTuneResult:
    """The skipped phase two: phase one's models, unchanged, with the reason in fine_tune.json."""
    logging.getLogger(__name__).info("fine_tune: skipped (%s)", reason)
    copy_unchanged(base_model_path, head_model_path, base_out, head_out)
    result = FineTuneResult(False, reason)
    atomic_files.write_json(os.path.join(head_out, FINE_TUNE_INFO), asdict(result))
    return result
