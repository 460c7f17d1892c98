"""One round of `make bench`'s row 1, the pipeline's side, in a fresh process set up as extract-features is.

    python -m benchmarks.extraction_round EXAMPLES_DIR FEATURES_DIR

The step gives each of its concurrent base calls its own share of the cores before TensorFlow's
runtime starts (`call_threads.share_cores_between_calls`), which a process that has run TensorFlow
before can no longer do; the bench's tight loop keeps TensorFlow's default threads, as a plain
script does. Prints one JSON line: the images written, `write_features`' seconds (its trace
included), and the base's images per second in the same process when nothing but its calls run,
as many at once and on as many images each as extraction's.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def main(argv=None) -> int:
    """Extracts EXAMPLES_DIR's features into FEATURES_DIR and prints the figures."""
    examples_dir, features_dir = argv if argv is not None else sys.argv[1:]
    from benchmarks.bench import base_spec
    from components.common.model.base_network import build_feature_extractor
    from components.common.model.feature_writing import CALLS_IN_FLIGHT, write_features
    from components.common.runtime.call_threads import share_cores_between_calls

    share_cores_between_calls(CALLS_IN_FLIGHT)
    extractor = build_feature_extractor(base_spec())
    started = time.perf_counter()
    written = write_features(extractor, examples_dir, features_dir, 32, {"base_model": "bench"})
    seconds = time.perf_counter() - started
    images = sum(written.counts.values())
    print(json.dumps({"images": images, "seconds": seconds,
                      "limit_two_calls_images_per_second": _calls_at_once(extractor, images, CALLS_IN_FLIGHT)}))
    return 0


def _calls_at_once(extractor, images: int, calls: int) -> float:
    """Images per second of the base alone, `calls` threads each calling it on one part of a batch of 32."""
    import tensorflow as tf

    from benchmarks.bench import IMAGE_SIZE
    from components.common.model.feature_writing import inference_function

    infer = inference_function(extractor, IMAGE_SIZE)
    part = tf.cast(tf.random.uniform([32 // calls, IMAGE_SIZE, IMAGE_SIZE, 3], 0, 255), tf.uint8)
    infer(part)  # trace once, outside the timing
    rounds = max(1, images // 32)
    with ThreadPoolExecutor(calls) as threads:
        started = time.perf_counter()
        list(threads.map(lambda _: [infer(part).numpy() for _ in range(rounds)], range(calls)))
        return rounds * calls * part.shape[0] / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
