"""`make bench-scale`: the whole pipeline at a small and a large size, step by step.

    python -m benchmarks.scale [--images 50000] [--small 5000] [--pooling flatten|avg]
                               [--compact-examples] [--output runs/scale.json]

Both trees are real-photo variants (see `photos.py`); the small tree is the large one's first variants,
linked, not copied. Each size gets one first run through kfp.local, as `headstart run`
does it, with its own cache. For every step the table gives its seconds, its process's peak
resident set (VmHWM) and the bytes it wrote, as the run summary records them; then the time per
image, and the disk the run left per image (the run's artifacts, and the step cache with the
feature store). The goals: each step's peak at the large size at most 1.3 times its peak at the
small one, and no more time per image at the large size than at the small one.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

from benchmarks.bench import IMAGE_SIZE, base_spec, machine
from benchmarks.photos import FIXTURE_PHOTOS, fixture_photos_present, photo_variants

RSS_GROWTH_GOAL = 1.3


def directory_bytes(*roots: pathlib.Path) -> int:
    """The bytes of every file under the roots, each inode counted once.

    The cache hard-links the outputs it keeps: a file in both the run's artifacts and the cache is
    on disk once.
    """
    seen, total = set(), 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                status = path.stat()
                if (status.st_dev, status.st_ino) not in seen:
                    seen.add((status.st_dev, status.st_ino))
                    total += status.st_size
    return total


def linked_subset(large: pathlib.Path, small: pathlib.Path, count: int) -> pathlib.Path:
    """Links the large tree's first `count` variants (by the number ending each name) into a small tree.

    The first variants cover every source photo in turn, so both splits and both classes keep
    their shares.
    """
    for path in large.rglob("*.jpg"):
        if int(path.stem.rsplit("_", 1)[1]) < count:
            target = small / path.relative_to(large)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return small


def run_once(tree: pathlib.Path, work: pathlib.Path, images: int, pooling: str = "flatten",
             compact_examples: bool = False) -> dict:
    """One first run of the whole pipeline on `tree` with the base's `pooling`; its seconds, steps and disk."""
    from pipeline.definition.config import PipelineConfig
    from pipeline.local.local_run import run_locally

    config = PipelineConfig(source=str(tree), base_model="mobilenet", alpha=0.25,
                            base_weights=base_spec().base_weights, image_size=IMAGE_SIZE, epochs=5, patience=5,
                            pooling=pooling, hidden_units=(), dropout=0.0, serving_root=str(work / "serving"),
                            fine_tune_mode="off", cache_root=str(work / "cache"),
                            compact_examples=compact_examples)
    start = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        # Fresh step processes, as pods have: a forked step's peak memory leaves out the TensorFlow
        # library pages its server touched (pipeline/local/warm_steps.py).
        outcome = run_locally(config, str(work / "runs"), terminal=quiet, cold_steps=True)
    seconds = time.perf_counter() - start
    if not outcome.succeeded:
        raise RuntimeError(f"the pipeline run on {images} images failed: {outcome.error}")
    steps = {name: {key: step.get(key) for key in ("seconds", "peak_rss_mb", "bytes_written")}
             for name, step in outcome.summary["steps"].items()}
    runs, disk = directory_bytes(work / "runs"), directory_bytes(work / "runs", work / "cache")
    return {"images": images, "seconds": seconds, "seconds_per_image": seconds / images, "steps": steps,
            "run_bytes": runs, "cache_only_bytes": disk - runs, "disk_bytes_per_image": disk / images,
            "test_accuracy": outcome.summary["metrics"].get("accuracy")}


def report(small: dict, large: dict) -> list[str]:
    """The table a person reads: every step at both sizes, then the goals."""
    lines = [f"{'step':<17} {'seconds':>16} {'peak RSS, MB':>16} {'growth':>7} {'MB written':>18}"]
    worst = 0.0
    for name, at_small in small["steps"].items():
        at_large = large["steps"][name]
        growth = (at_large["peak_rss_mb"] or 0) / (at_small["peak_rss_mb"] or 1)
        worst = max(worst, growth)
        lines.append(f"{name:<17} {at_small['seconds']:>7.1f} {at_large['seconds']:>8.1f} "
                     f"{at_small['peak_rss_mb'] or 0:>7.0f} {at_large['peak_rss_mb'] or 0:>8.0f} {growth:>7.2f} "
                     f"{(at_small['bytes_written'] or 0) / 1e6:>8.0f} {(at_large['bytes_written'] or 0) / 1e6:>9.0f}")
    per_image = large["seconds_per_image"] / small["seconds_per_image"]
    lines += [
        f"whole run: {small['seconds']:.1f} s for {small['images']} images, {large['seconds']:.1f} s for "
        f"{large['images']}; time per image {1000 * small['seconds_per_image']:.2f} ms and "
        f"{1000 * large['seconds_per_image']:.2f} ms (ratio {per_image:.2f}, goal <= 1.0)",
        f"peak RSS growth, the largest of any step: {worst:.2f} (goal <= {RSS_GROWTH_GOAL})",
        f"disk per image, artifacts and cache (a hard-linked file once): {small['disk_bytes_per_image'] / 1e3:.0f} "
        f"KB and {large['disk_bytes_per_image'] / 1e3:.0f} KB",
    ]
    return lines


def main(argv=None) -> int:
    """Makes the trees, runs the pipeline at both sizes, prints the table and saves it to --output."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000, help="the large size (default: %(default)s)")
    parser.add_argument("--small", type=int, default=5_000, help="the small size (default: %(default)s)")
    parser.add_argument("--pooling", default="flatten", choices=("flatten", "avg"),
                        help="the base's pooling: flatten, as `make bench` compares with the plain script (12,544 "
                             "floats per vector), or avg, the pipeline's default (256) (default: %(default)s)")
    parser.add_argument("--compact-examples", action="store_true",
                        help="preprocess keeps the images encoded, not their pixels (the pipeline's option)")
    parser.add_argument("--work", help="where the trees and runs go (default: a temporary folder, removed after)")
    parser.add_argument("--output", default="runs/scale.json", help="where the JSON goes (default: %(default)s)")
    args = parser.parse_args(argv)
    if not fixture_photos_present():
        parser.error(f"the scale run needs the fixture photos in {FIXTURE_PHOTOS}")
    from components.common.runtime.logs import import_tensorflow_quietly

    import_tensorflow_quietly(os.devnull)
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = pathlib.Path(scratch)
        print(f"Making {args.images} photo variants ...", flush=True)
        large_tree = photo_variants(work / "large" / "photos", args.images)
        small_tree = linked_subset(large_tree, work / "small" / "photos", args.small)
        results = {"machine": machine(), "pooling": args.pooling, "compact_examples": args.compact_examples}
        for label, tree, count in (("small", small_tree, args.small), ("large", large_tree, args.images)):
            print(f"The pipeline on {count} images ...", flush=True)
            results[label] = run_once(tree, work / label, count, args.pooling, args.compact_examples)
    # The figures differ by configuration: the table names its own.
    lines = [f"{args.pooling} pooling, {'compact examples' if args.compact_examples else 'pixels kept'}",
             *report(results["small"], results["large"])]
    print("\n" + "\n".join(lines))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({**results, "table": lines}, f, indent=2)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
