"""Accuracy per second of candidate defaults, on real photos the pipeline never saw.

    python -m benchmarks.accuracy [--candidates NAME ...] [--seeds 1 2 3] [--output runs/accuracy.json]

Runs the whole pipeline through kfp.local on `../shared/fixtures/cats_dogs_4k` (2,000 training
and 2,000 test photos, none a variant of another) once per candidate and seed, with the
pipeline's defaults but for each candidate's knobs, MobileNet alpha 0.25 and the shared ImageNet
weights. Each candidate gets a fresh step cache: its first seed is a first run, timed; the
later seeds only change the head's seed, so they reuse the features and differ in training.

The table gives each candidate's test accuracy (mean, and lowest to highest over the seeds) and
the seconds of its first run. The photos are 200x200, so they decode faster than real uploads:
take speed from `make bench` (real-photo variants at full size), accuracy from here.
"""

import argparse
import glob
import json
import os
import pathlib
import statistics
import sys
import tempfile

from benchmarks.bench import SHARED_WEIGHTS, timed
from components.common.contract.artifact_files import PREDICTIONS

ACCURACY_PHOTOS = SHARED_WEIGHTS.parent / "cats_dogs_4k"

# Each candidate: the knobs it sets on top of the pipeline's defaults (trained on each image and its
# mirror, averaging those and two central crops at test time; no head search).
CANDIDATES = {
    # Trains on the image and its mirror, averages all four views.
    "defaults": {},
    "four_views_tta": {"augment_views": 4, "test_time_views": 0},
    "two_views_tta": {"test_time_views": 0},
    "one_view": {"augment_views": 1, "test_time_augmentation": False},
    "tune_20s": {"tune_seconds": 20},
}
# What --candidates measures unless told.
COMPARED = ("defaults", "four_views_tta", "two_views_tta", "one_view")

def run_candidate(knobs: dict, seed: int, work: pathlib.Path) -> dict:
    """One pipeline run with the defaults, `knobs` and `seed`; its test accuracy, seconds and step seconds."""
    from pipeline.definition.config import PipelineConfig
    from pipeline.local.local_run import run_locally

    config = PipelineConfig(source=str(ACCURACY_PHOTOS), alpha=0.25, base_weights=str(SHARED_WEIGHTS),
                            serving_root=str(work / "serving"), cache_root=str(work / "cache"),
                            model_name=f"seed{seed}", seed=seed, **knobs)
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        seconds, outcome = timed(run_locally, config, str(work / "runs"), terminal=quiet)
    if not outcome.succeeded:
        raise RuntimeError(f"the pipeline run failed: {outcome.error}")
    summary = outcome.summary
    return {"seed": seed, "correct": _test_correctness(work / "runs"), "seconds": seconds,
            "test_accuracy": summary["metrics"]["accuracy"],
            "test_images": summary["metrics"].get("count"),
            "steps": {name: step["seconds"] for name, step in summary["steps"].items()},
            "edge": {variant: {"passed": check.get("passed"), "reason": check.get("reason")}
                     for variant, check in (summary.get("edge") or {}).items()}}


def _test_correctness(runs: pathlib.Path) -> list[bool]:
    """Per test image, in the split's order, whether the newest run's evaluation got it right."""
    import numpy as np

    newest = max(glob.glob(str(runs / "**" / PREDICTIONS), recursive=True), key=os.path.getmtime)
    with np.load(newest) as predictions:
        return (predictions["probabilities"].argmax(axis=1) == predictions["label_indices"]).tolist()


def paired_against(baseline: dict, candidate: dict) -> dict:
    """Candidate minus baseline in accuracy, paired image by image over the seeds both ran, with a 95% interval."""
    from components.evaluate.blessing import paired_comparison

    pairs = [(b["correct"], c["correct"])
             for b in baseline["runs"] for c in candidate["runs"] if b["seed"] == c["seed"]]
    comparison = paired_comparison([x for _, correct in pairs for x in correct],
                                   [x for correct, _ in pairs for x in correct], confidence=0.975)
    return {"difference": comparison.difference, "low": comparison.lower, "high": comparison.upper,
            "gains": comparison.challenger_only, "losses": comparison.champion_only, "seeds": len(pairs)}


def measure(candidates: list[str], seeds: list[int], scratch: pathlib.Path) -> dict:
    """Every candidate's runs, one per seed, each candidate in a cache of its own."""
    results = {}
    for name in candidates:
        runs = []
        for seed in seeds:
            print(f"{name}, seed {seed} ...", flush=True)
            runs.append(run_candidate(CANDIDATES[name], seed, scratch / name))
        accuracies = [run["test_accuracy"] for run in runs]
        results[name] = {"knobs": CANDIDATES[name], "runs": runs, "accuracy_mean": statistics.mean(accuracies),
                         "accuracy_low": min(accuracies), "accuracy_high": max(accuracies),
                         "first_run_seconds": runs[0]["seconds"]}
    return results


def main(argv=None) -> int:
    """Measures the chosen candidates, prints the table and saves every run to --output."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=list(COMPARED),
                        help=f"the knob sets to compare (default: {' '.join(COMPARED)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                        help="head seeds; each candidate runs once per seed (default: %(default)s)")
    parser.add_argument("--output", default="runs/accuracy.json", help="where the JSON goes (default: %(default)s)")
    args = parser.parse_args(argv)
    if not ACCURACY_PHOTOS.is_dir() or not SHARED_WEIGHTS.exists():
        parser.error(f"needs the real photos in {ACCURACY_PHOTOS} and the weights {SHARED_WEIGHTS}")
    with tempfile.TemporaryDirectory() as scratch:
        results = measure(args.candidates, args.seeds, pathlib.Path(scratch))
    baseline_name = args.candidates[0]
    print(f"\n{'candidate':<26} {'accuracy mean':>13} {'low':>7} {'high':>7} {'first run, s':>13}   "
          f"minus {baseline_name}, paired (95%)")
    for name, result in results.items():
        paired = result["paired_against_first"] = paired_against(results[baseline_name], result)
        print(f"{name:<26} {result['accuracy_mean']:>13.4f} {result['accuracy_low']:>7.4f} "
              f"{result['accuracy_high']:>7.4f} {result['first_run_seconds']:>13.1f}   "
              f"{paired['difference']:+.4f} ({paired['low']:+.4f} to {paired['high']:+.4f}; "
              f"{paired['gains']} gained, {paired['losses']} lost)")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"photos": str(ACCURACY_PHOTOS), "seeds": args.seeds, "candidates": results}, f, indent=2)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
