"""Infra-validation: a staged export, loaded in a fresh process, answers real test images.

Run as `python -m components.push.infra_check [--wait] EXPORT_DIR EXAMPLES_DIR PREDICTIONS_NPZ`.
With --wait it imports TensorFlow first and checks once it reads GO on stdin, so the push can
start it before the export is written and the import overlaps the export. A fresh
process is what TF Serving is: nothing of the training process (registered layers, live Python
objects) helps the export load. Exits 0 when the export answers the first test images with the
evaluate step's probabilities (within TOLERANCE), 1 with the reason otherwise.
"""

import os
import sys

GO = "go"
CHECK_IMAGES = 8
TOLERANCE = 1e-4


def check(export_dir: str, examples_dir: str, predictions_path: str) -> str | None:
    """None when the export answers like the evaluated model, else the reason it does not."""
    import numpy as np
    import tensorflow as tf

    from components.common import examples_info
    from components.extract_features.core import image_batches

    image_size = examples_info.image_size(examples_dir)
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


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    wait = argv[:1] == ["--wait"]
    argv = argv[1:] if wait else argv
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    if wait:
        from components.common.lean_imports import keep_scikit_learn_out

        keep_scikit_learn_out()
        import tensorflow  # noqa: F401  (the slow part, done while the export is being written)

        if sys.stdin.readline().strip() != GO:
            print("cancelled before the export was ready", file=sys.stderr)
            return 3
    failure = check(*argv)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
