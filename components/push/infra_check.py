"""Infra-validation: a staged export, loaded in a fresh process, answers real test images.

Run as `python -m components.push.infra_check EXPORT_DIR EXAMPLES_DIR PREDICTIONS_NPZ`, or with
`--wait EXAMPLES_DIR PREDICTIONS_NPZ`: then it imports TensorFlow first and reads EXPORT_DIR from
stdin once the export is written, so the push starts it early and the import (seconds) overlaps
the push's own work (`InfraCheck`). A fresh process is what TF Serving is: nothing of the
training process (registered layers, live Python objects) helps the export load. Exits 0 when
the export answers the first test images with the evaluate step's probabilities (within
TOLERANCE), 1 with the reason otherwise, 3 when cancelled before an export came.

This module imports nothing heavy, so a step can start the check before importing TensorFlow.
"""

import os
import subprocess
import sys

CHECK_IMAGES = 8
TOLERANCE = 1e-4


def check(export_dir: str, examples_dir: str, predictions_path: str) -> str | None:
    """None when the export answers like the evaluated model, else the reason it does not."""
    import numpy as np
    import tensorflow as tf

    from components.common.contract import examples_info
    from components.common.contract.example_batches import image_batches

    image_size = examples_info.read_stats(examples_dir).image_size
    images, _ = next(iter(image_batches(examples_dir, "test", image_size, CHECK_IMAGES)))
    # PNG is lossless: the served model decodes exactly the pixels the evaluate step saw.
    encoded = tf.stack([tf.io.encode_png(tf.cast(image, tf.uint8)) for image in images])
    try:
        served = tf.saved_model.load(export_dir).signatures["serving_default"](image_bytes=encoded)
    except Exception as error:  # whatever stops it from loading or answering fails the check
        return f"the export does not load or answer: {type(error).__name__}: {error}"
    with np.load(predictions_path, allow_pickle=False) as predictions:
        expected = predictions["probabilities"][: len(images)]
    difference = float(np.abs(served["probabilities"].numpy() - expected).max())
    if difference > TOLERANCE:
        return f"the export's probabilities differ from the evaluated model's by {difference:.2e}"
    return None


class InfraCheck:
    """The check's fresh process, started ahead of the export it will load.

    `run(export_dir)` hands it the written export and waits for its verdict; leaving the
    `with` block without `run` (not blessed, or the export failed) stops it.
    """

    def __init__(self, examples_dir: str, predictions_path: str):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "components.push.infra_check", "--wait", examples_dir, predictions_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, export_dir: str) -> None:
        """Checks that the written export loads and answers real test images.

        Raises:
            RuntimeError: the export did not load, did not answer, or answered differently.
        """
        _, stderr = self._process.communicate(export_dir + "\n")
        if self._process.returncode != 0:
            reason = stderr.strip().splitlines()[-1] if stderr.strip() else "no reason given"
            raise RuntimeError(f"infra-validation failed, nothing pushed: {reason}")

    def __enter__(self) -> "InfraCheck":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


def main(argv: list[str]) -> int:
    """The command line the module docstring describes; returns the exit status (2 for a wrong usage)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    wait = argv[:1] == ["--wait"]
    argv = argv[1:] if wait else argv
    if len(argv) != (2 if wait else 3):
        print(__doc__, file=sys.stderr)
        return 2
    if wait:
        from components.common.runtime.lean_imports import keep_scikit_learn_out

        keep_scikit_learn_out()
        import tensorflow  # noqa: F401  (the slow part, done while the push works)

        export_dir = sys.stdin.readline().strip()
        if not export_dir:
            print("cancelled before an export was ready", file=sys.stderr)
            return 3
        argv = [export_dir, *argv]
    failure = check(*argv)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
