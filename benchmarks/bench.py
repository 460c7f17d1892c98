"""`make bench`: speed and memory, measured side by side in one run on the same JPEGs.

    python -m benchmarks.bench [--images N] [--memory-images M] [--epochs E] [--photos real|generated]
                               [--rows R ...] [--rounds N] [--output runs/bench.json]

Run it from the repository root (benchmarks/ is not part of the installed package); `make bench`
runs it with the defaults. The images are variants of the real fixture photos (crops, mirrors,
scales, re-encodings; see `photos.py`) when ../shared/fixtures has them, generated scenes
otherwise. The base is MobileNet alpha 0.25 at 224 pixels, with the ImageNet weights in
../shared/fixtures when they are there and random weights otherwise.

Each row compares two figures, a and b, and prints their ratio:
1. feature extraction, images/s: the pipeline's extraction (read, parse, infer, write) against a
   tight tf.function loop over decoded tensors, one call at a time as a plain script runs it (the
   JSON also gives the network alone run as the step runs it, two calls at once, each with its
   share of the cores);
2. first run, seconds: the whole pipeline through kfp.local against the plain Keras script
   trained for the same epochs;
3. one epoch, seconds: the end-to-end Keras model against the head on cached features;
4. whole pipeline, seconds: a first run against a repeat on unchanged data (the step cache);
5. peak memory of each step, each in its own process, with M and with 4M images;
6. Beam preprocessing, images/s: the in_memory runner against multi_processing;
7. first run, seconds, as row 2 but without the work the defaults add: one view per image, no
   test-time augmentation, no TFLite models (the audit, the report and the near-duplicate check
   still run; its own step cache, so nothing is reused).
The first runs of rows 2, 4 and 7 and the plain script run in --rounds alternating rounds, and
each side's median round is reported, as row 1 reports medians of alternating rounds.
Everything lands in the --output JSON. Machines are shared and noisy: read the ratios, not the
absolute figures.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.bench_memory import STEPS, peak_rss_per_step
from benchmarks.photos import FIXTURE_PHOTOS, fixture_photos_present, photo_variants
from components.common.runtime.logs import import_tensorflow_quietly

SHARED_WEIGHTS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / \
    "mobilenet_2_5_224_tf_no_top.h5"
IMAGE_SIZE = 224
EXTRACTION_ROUNDS = 3
# The plain Keras script's head, Flatten then Dense(1, sigmoid) without dropout, in the pipeline too.
HEAD = {"hidden_units": (), "dropout": 0.0}


def machine() -> dict:
    """Cores, architecture, Python version and the vector-instruction flags that set TensorFlow's speed."""
    flags = set()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_flags": sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"})}


def generate_jpegs(root: pathlib.Path, count: int, seed: int = 0) -> pathlib.Path:
    """Smooth two-class photos-like JPEGs, 250 to 500 pixels a side: warm scenes and cool scenes."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for index in range(count):
        label = ("warm", "cool")[index % 2]
        split = "test" if index % 5 == 0 else "train"
        width, height = rng.integers(250, 501, size=2)
        base = np.array([200, 120, 60] if label == "warm" else [60, 120, 200]) + rng.integers(-40, 40, size=3)
        gradient = np.linspace(0.6, 1.2, width)[None, :, None] * np.linspace(0.8, 1.1, height)[:, None, None]
        pixels = np.clip(base[None, None, :] * gradient + rng.normal(0, 8, (height, width, 3)), 0, 255)
        image = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = rng.integers(0, width - 40), rng.integers(0, height - 40)
            draw.ellipse([x, y, x + rng.integers(20, 120), y + rng.integers(20, 120)],
                         fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        path = root / split / label / f"{label}_{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
    return root


def timed(function, *args, **kwargs):
    """Calls function(*args, **kwargs); returns (wall-clock seconds, its result)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def base_spec():
    """The benchmark's base: MobileNet alpha 0.25, with the shared ImageNet weights when they are there."""
    from components.common.model.base_network import BaseNetworkSpec

    weights = str(SHARED_WEIGHTS) if SHARED_WEIGHTS.exists() else "none"
    return BaseNetworkSpec(base_model="mobilenet", alpha=0.25, base_weights=weights, image_size=IMAGE_SIZE)


def bench_beam(raw_dir: str, work: pathlib.Path, count: int) -> dict:
    """Preprocesses the `count` ingested images once per Beam direct-runner mode; seconds and images/s of each."""
    from components.preprocess import core as preprocess_core

    rows = {}
    for mode, args in (("in_memory", ["--direct_running_mode=in_memory"]),
                       ("multi_processing", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])):
        seconds, _ = timed(preprocess_core.run, raw_dir=raw_dir, output_dir=str(work / f"examples_{mode}"),
                           image_size=IMAGE_SIZE, beam_args=args)
        rows[mode] = {"seconds": seconds, "images_per_second": count / seconds}
    return rows


def bench_extraction(examples_dir: str, work: pathlib.Path) -> dict:
    """Images per second of the pipeline's extraction (read, parse, infer, write) and of the limit."""
    import tensorflow as tf

    from components.common.model.base_network import build_feature_extractor

    spec = base_spec()
    setup_seconds, extractor = timed(build_feature_extractor, spec)
    batch = tf.random.uniform([32, IMAGE_SIZE, IMAGE_SIZE, 3], 0, 255)
    infer = tf.function(lambda images: extractor(images, training=False))
    infer(batch)  # trace once, outside the timing
    rates = {"pipeline": [], "limit": [], "limit_two_calls": []}
    # Alternating rounds, medians reported: on a shared machine one slow spell would otherwise
    # decide the ratio. Every pipeline round is a whole write_features call, its trace included,
    # in a fresh process with the step's threads (benchmarks/extraction_round.py).
    for round_index in range(EXTRACTION_ROUNDS):
        features_dir = str(work / ("features" if round_index == 0 else f"features_{round_index}"))
        written = json.loads(subprocess.run(
            [sys.executable, "-m", "benchmarks.extraction_round", examples_dir, features_dir],
            check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        rates["pipeline"].append(written["images"] / written["seconds"])
        rates["limit_two_calls"].append(written["limit_two_calls_images_per_second"])
        batches = max(1, written["images"] // 32)
        seconds, _ = timed(lambda: [infer(batch).numpy() for _ in range(batches)])
        rates["limit"].append(batches * 32 / seconds)
    return {"pipeline_images_per_second": float(np.median(rates["pipeline"])),
            "limit_images_per_second": float(np.median(rates["limit"])),
            "limit_two_calls_images_per_second": float(np.median(rates["limit_two_calls"])),
            "rounds": rates, "build_base_seconds": setup_seconds}


def steady_epoch_seconds(epoch_seconds: list[float]) -> float:
    """The median epoch after the first: the first one also traces the training functions."""
    return float(np.median(epoch_seconds[1:] or epoch_seconds))


def bench_head_epoch(features_dir: str, epochs: int) -> dict:
    """Trains the head on the cached features; its steady seconds per epoch and every epoch's seconds."""
    from components.common.config.head_config import HeadConfig
    from components.common.model.head_training import train

    with tempfile.TemporaryDirectory() as head_dir:
        result = train(features_dir=features_dir, head_model_dir=head_dir,
                       config=HeadConfig(epochs=epochs, patience=epochs, **HEAD))
    return {"head_seconds_per_epoch": steady_epoch_seconds(result.epoch_seconds),
            "epoch_seconds": result.epoch_seconds}


def plain_keras(tree: pathlib.Path, epochs: int) -> dict:
    """The twenty-line script the pipeline must not be slower than."""
    import keras

    from components.common.model.head_training import EpochTimer

    train = keras.utils.image_dataset_from_directory(tree / "train", image_size=(IMAGE_SIZE, IMAGE_SIZE),
                                                     batch_size=32, label_mode="binary", seed=1, verbose=False)
    test = keras.utils.image_dataset_from_directory(tree / "test", image_size=(IMAGE_SIZE, IMAGE_SIZE),
                                                    batch_size=32, label_mode="binary", shuffle=False, verbose=False)
    spec = base_spec()
    weights = None if spec.base_weights == "none" else spec.base_weights
    base = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=weights,
                                        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    base.trainable = False
    model = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1),
                              base, keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "seconds_per_epoch": steady_epoch_seconds(timer.seconds),
            "epoch_seconds": timer.seconds, "test_accuracy": float(model.evaluate(test, verbose=0)[1])}


# What row 7 turns off: the work the defaults add that the plain script does not do (augmented
# views, test-time augmentation, the TFLite models). The audit, the report and the near-duplicate
# check still run.
SCRIPT_RECIPE = {"augment_views": 1, "test_time_augmentation": False, "edge_export": False}


def pipeline_run(tree: pathlib.Path, work: pathlib.Path, epochs: int, cold_steps: bool, **knobs) -> dict:
    """One whole pipeline run through kfp.local, with the step cache under `work/cache`; `knobs` override.

    `cold_steps` starts each step in a fresh Python instead of forking it warm (pipeline/local/warm_steps.py).
    """
    from pipeline.definition.config import PipelineConfig
    from pipeline.local.local_run import run_locally

    spec = base_spec()
    config = PipelineConfig(source=str(tree), base_model="mobilenet", alpha=0.25, base_weights=spec.base_weights,
                            image_size=IMAGE_SIZE, epochs=epochs, patience=epochs, pooling="flatten",
                            hidden_units=HEAD["hidden_units"], dropout=HEAD["dropout"],
                            serving_root=str(work / "serving"), fine_tune_mode="off",
                            cache_root=str(work / "cache"), **knobs)
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        seconds, outcome = timed(run_locally, config, str(work / "runs"), terminal=quiet, cold_steps=cold_steps)
    if not outcome.succeeded:
        raise RuntimeError(f"the pipeline run failed: {outcome.error}")
    steps = outcome.summary["steps"]
    return {"seconds": seconds, "test_accuracy": outcome.summary["metrics"]["accuracy"],
            "steps": {name: step["seconds"] for name, step in steps.items()},
            "peak_rss_mb": {name: step.get("peak_rss_mb") for name, step in steps.items()},
            "bytes_written": {name: step.get("bytes_written") for name, step in steps.items()},
            "reused": [name for name, step in steps.items() if (step.get("cache") or {}).get("reused")]}


ROWS = {
    1: ("1 feature extraction, images/s (pipeline / tight loop)", "goal >= 0.9"),
    2: ("2 first run, seconds (pipeline / plain Keras)", "goal <= 1.2"),
    3: ("3 one epoch (median after the first), s (Keras end to end / head)", "goal >= 50"),
    4: ("4 whole pipeline, seconds (first run / repeat on unchanged data)", "goal >= 5"),
    5: ("5 peak RSS, MB, of the step that grows most: 4x / 1x images", "goal <= 1.3"),
    6: ("6 Beam images/s (in_memory / multi_processing)", ""),
    7: ("7 first run, seconds, as 2 without views, TTA, TFLite (pipeline / plain Keras)", ""),
}


def first_runs(rows: set[int], tree: pathlib.Path, work: pathlib.Path, args) -> dict:
    """The plain script's and the pipeline's first runs, in alternating rounds; each side's median round.

    Each round runs the plain script, then the pipeline with the defaults (rows 2 and 4), then
    with the script's recipe (row 7), each pipeline with a step cache of its own under
    `work/round_N`. A slow spell of a shared machine then falls on one round of each side rather
    than on one side; every round is kept under `<part>_rounds`.
    """
    parts = {"plain_keras": rows & {2, 3, 7}, "pipeline": rows & {2, 4}, "pipeline_script_recipe": rows & {7}}
    rounds: dict[str, list[dict]] = {part: [] for part, wanted in parts.items() if wanted}
    for round_index in range(args.rounds):
        round_dir = work / f"round_{round_index}"
        print(f"First runs, round {round_index + 1} of {args.rounds} ...", flush=True)
        if "plain_keras" in rounds:
            print("  the plain Keras script ...", flush=True)
            rounds["plain_keras"].append(plain_keras(tree, args.epochs))
        if "pipeline" in rounds:
            print("  the whole pipeline ...", flush=True)
            rounds["pipeline"].append(pipeline_run(tree, round_dir, args.epochs, args.cold_steps))
        if "pipeline_script_recipe" in rounds:
            print("  the whole pipeline, doing only the plain script's work ...", flush=True)
            rounds["pipeline_script_recipe"].append(pipeline_run(tree, round_dir / "script_recipe", args.epochs,
                                                                 args.cold_steps, **SCRIPT_RECIPE))
    results = {}
    for part, measured in rounds.items():
        results[part] = sorted(measured, key=lambda result: result["seconds"])[(len(measured) - 1) // 2]
        results[f"{part}_rounds"] = measured
    return results


def photo_tree(kind: str, root: pathlib.Path, count: int, seed: int) -> pathlib.Path:
    """The bench's images: real-photo variants of the fixtures, or generated scenes."""
    if kind == "real":
        return photo_variants(root, count, seed=seed)
    return generate_jpegs(root, count, seed=seed)


def measure(rows: set[int], kind: str, args, work: pathlib.Path) -> dict:
    """Runs what the chosen rows need; returns every figure by part."""
    from components.ingest import core as ingest_core

    results = {}
    print(f"Making {args.images} {kind} JPEGs ...", flush=True)
    tree = photo_tree(kind, work / "photos", args.images, seed=0)
    if rows & {1, 3, 6}:
        ingest_core.run(source=str(tree), output_dir=str(work / "raw"))
        print("Beam preprocessing, in_memory and multi_processing ...", flush=True)
        results["beam"] = bench_beam(str(work / "raw"), work, args.images)
    if rows & {1, 3}:
        print("Feature extraction against the tight loop ...", flush=True)
        results["extraction"] = bench_extraction(str(work / "examples_in_memory"), work)
        print("Head epochs on cached features ...", flush=True)
        results["head"] = bench_head_epoch(str(work / "features"), args.epochs)
    if rows & {2, 3, 4, 7}:
        results.update(first_runs(rows, tree, work, args))
    if 4 in rows:
        print("The whole pipeline again, on unchanged data ...", flush=True)
        results["repeat"] = pipeline_run(tree, work / "round_0", args.epochs, args.cold_steps)
    if 5 in rows:
        print(f"Peak memory of each step, {args.memory_images} and {4 * args.memory_images} images ...", flush=True)
        weights = str(base_spec().base_weights)
        smaller = photo_tree(kind, work / "photos_1x", args.memory_images, seed=2)
        larger = photo_tree(kind, work / "photos_4x", 4 * args.memory_images, seed=1)
        results["memory_mb"] = {
            "1x": peak_rss_per_step(smaller, work / "memory_1x", IMAGE_SIZE, weights),
            "4x": peak_rss_per_step(larger, work / "memory_4x", IMAGE_SIZE, weights),
        }
    return results


def table(rows: set[int], results: dict) -> list[tuple[str, float, float, str]]:
    """(measure, a, b, goal) of each chosen row."""
    figures = {}
    if 1 in rows:
        figures[1] = (results["extraction"]["pipeline_images_per_second"],
                      results["extraction"]["limit_images_per_second"])
    if 2 in rows:
        figures[2] = (results["pipeline"]["seconds"], results["plain_keras"]["seconds"])
    if 3 in rows:
        figures[3] = (results["plain_keras"]["seconds_per_epoch"], results["head"]["head_seconds_per_epoch"])
    if 4 in rows:
        figures[4] = (results["pipeline"]["seconds"], results["repeat"]["seconds"])
    if 5 in rows:
        memory = results["memory_mb"]
        worst = max(STEPS, key=lambda step: memory["4x"][step] / memory["1x"][step])
        figures[5] = (memory["4x"][worst], memory["1x"][worst])
    if 6 in rows:
        figures[6] = (results["beam"]["in_memory"]["images_per_second"],
                      results["beam"]["multi_processing"]["images_per_second"])
    if 7 in rows:
        figures[7] = (results["pipeline_script_recipe"]["seconds"], results["plain_keras"]["seconds"])
    return [(ROWS[row][0], *figures[row], ROWS[row][1]) for row in sorted(rows)]


def main(argv=None) -> int:
    """Runs the chosen rows on fresh images, prints the table and saves it with its figures to --output."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000,
                        help="JPEGs for rows 1-4 and 6 (default: %(default)s)")
    parser.add_argument("--memory-images", type=int, default=400,
                        help="row 5 runs each step on this many images and on 4 times as many "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs for both sides (default: %(default)s)")
    parser.add_argument("--photos", choices=["real", "generated"],
                        help="real: variants of the fixture photos (the default when ../shared/fixtures has them); "
                             "generated: synthetic scenes")
    parser.add_argument("--rows", type=int, nargs="+", choices=sorted(ROWS), default=sorted(ROWS),
                        help="the rows to measure (default: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the plain script and the pipeline's first runs for rows 2, 4 and "
                             "7; each side's median round is reported (default: %(default)s)")
    parser.add_argument("--cold-steps", action="store_true",
                        help="start each pipeline step in a fresh Python, as a pod does, instead of forking it from "
                             "one that has imported TensorFlow (`headstart run --cold-steps`)")
    parser.add_argument("--output", default="runs/bench.json", help="where the JSON goes (default: %(default)s)")
    args = parser.parse_args(argv)
    kind = args.photos or ("real" if fixture_photos_present() else "generated")
    if kind == "real" and not fixture_photos_present():
        parser.error(f"--photos real needs the fixture photos in {FIXTURE_PHOTOS}")
    import_tensorflow_quietly(os.devnull)
    rows = set(args.rows)
    with tempfile.TemporaryDirectory() as scratch:
        results = measure(rows, kind, args, pathlib.Path(scratch))
    results.update({"machine": machine(), "photos": kind, "cold_steps": args.cold_steps, "images": args.images,
                    "memory_images": args.memory_images, "epochs": args.epochs,
                    "weights": str(base_spec().base_weights)})
    found = table(rows, results)
    print(f"\nheadstart bench: {args.images} {kind} images ({args.memory_images} and {4 * args.memory_images} "
          f"for row 5), {args.epochs} epochs, machine {results['machine']}")
    print(f"{'measure':<66} {'a':>10} {'b':>10} {'a/b':>8}  goal")
    for name, a, b, goal in found:
        print(f"{name:<66} {a:>10.2f} {b:>10.2f} {a / b:>8.2f}  {goal}")
    if "pipeline" in results:
        print("pipeline steps, seconds: " + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in results["pipeline"]["steps"].items()))
    if "repeat" in results:
        print(f"repeat run: {len(results['repeat']['reused'])} of {len(results['repeat']['steps'])} steps reused")
    if "memory_mb" in results:
        memory = results["memory_mb"]
        print("peak RSS per step, MB (1x, 4x): " + ", ".join(
            f"{step} {memory['1x'][step]:.0f}/{memory['4x'][step]:.0f}" for step in STEPS))
    if "pipeline" in results and "plain_keras" in results:
        print(f"test accuracy: pipeline {results['pipeline']['test_accuracy']:.4f}, "
              f"plain Keras {results['plain_keras']['test_accuracy']:.4f}")
    results["table"] = [{"measure": name, "a": a, "b": b, "ratio": a / b, "goal": goal} for name, a, b, goal in found]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
