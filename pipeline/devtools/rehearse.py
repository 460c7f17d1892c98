"""`make rehearse`: the pipeline twice, as a KFP cluster runs it, against a Cloud Storage emulator.

It starts fake-gcs-server (from the test requirements), uploads the offline demo's images and
its pretrained base network into a bucket, and runs `headstart run --containers --isolated`
twice with every root on gs://: source, base network, serving root and step cache. Each step
runs in its own container, which sees only its own artifacts (pipeline/local/isolated.py).

The first run must push version 1; the second must reuse every step from the gs:// cache and
push nothing. The last line printed is one JSON object, `{"isolated": true, "runs": [first,
second]}`, each run being the summary `--summary` writes; the exit status is 0 only when both
runs did what they must, with the reasons on stderr otherwise.
"""

import argparse
import json
import os
import sys
import tempfile
from typing import Sequence

from components.common.config.run_settings import PROJECT

BUCKET = "headstart-rehearsal"
SOURCE = f"gs://{BUCKET}/demo-digits"
BASE_MODEL = f"gs://{BUCKET}/base-networks/digits_0_4_base.keras"
SERVING_ROOT = f"gs://{BUCKET}/serving"
CACHE_ROOT = f"gs://{BUCKET}/cache"
MODEL_NAME = PROJECT


def upload_demo(base_dir: str) -> int:
    """Uploads the demo's images as a split folder tree and its pretrained base; returns the image count."""
    from components.common.storage import gcs
    from components.ingest.demo_digits import iter_target_task
    from pipeline.cli.demo import prepare_demo_base

    count = 0
    for png, label, origin, split in iter_target_task():
        index = origin.rsplit("/", 1)[-1]
        gcs.upload_bytes(png, gcs.join(SOURCE, split, label, f"{index}.png"), overwrite=True)
        count += 1
    gcs.upload_file(prepare_demo_base(base_dir), BASE_MODEL, overwrite=True)
    return count


def rehearsal_args(pipeline_root: str, summary_path: str, image: str | None) -> list[str]:
    """`headstart run` arguments of one isolated run, with the demo's own training settings."""
    from pipeline.cli.demo import DEMO_KNOBS
    from pipeline.cli.run_options import knob_arguments

    return ["run", "--containers", "--isolated", "--source", SOURCE, "--base-model", BASE_MODEL,
            *knob_arguments(DEMO_KNOBS), "--serving-root", SERVING_ROOT, "--model-name", MODEL_NAME,
            "--cache-root", CACHE_ROOT, "--pipeline-root", pipeline_root, "--summary", summary_path,
            *(["--image", image] if image else [])]


def problems_with(first: dict, second: dict) -> list[str]:
    """What the two runs did that a rehearsal must not: empty when it passed."""
    problems = []
    for number, summary in enumerate((first, second), 1):
        failed = [name for name, step in summary["steps"].items() if step["status"] != "SUCCESS"]
        if failed:
            problems.append(f"run {number}: steps did not succeed: {', '.join(failed)}")
    expected_uri = f"{SERVING_ROOT}/{MODEL_NAME}/1"
    if first.get("pushed_uri") != expected_uri:
        problems.append(f"run 1 pushed {first.get('pushed_uri')!r}, not {expected_uri}: {first.get('push_reason')}")
    ran = [name for name, step in second["steps"].items() if not (step.get("cache") or {}).get("reused")]
    if ran:
        problems.append(f"run 2 ran steps instead of reusing them from {CACHE_ROOT}: {', '.join(ran)}")
    if "already serving" not in (second.get("push_reason") or ""):
        problems.append(f"run 2 did not leave serving as it was: {second.get('push_reason')!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the rehearsal the module docstring describes; returns 0 only when both runs passed."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.devtools.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-root", default="runs/rehearsal",
                        help="where the runs' artifacts and logs go on this machine (default: %(default)s)")
    parser.add_argument("--image", help="the image (default: $HEADSTART_IMAGE, else the project's)")
    args = parser.parse_args(argv)

    from pipeline.cli import commands
    from pipeline.devtools.storage_emulator import cloud_storage_emulator

    pipeline_root = os.path.abspath(args.pipeline_root)
    os.makedirs(pipeline_root, exist_ok=True)
    summaries = []
    with cloud_storage_emulator(BUCKET) as url, tempfile.TemporaryDirectory() as scratch:
        print(f"Cloud Storage emulator (fake-gcs-server) at {url}", flush=True)
        count = upload_demo(os.path.join(pipeline_root, "demo"))
        print(f"uploaded {count} demo images to {SOURCE} and the pretrained base to {BASE_MODEL}", flush=True)
        for number in (1, 2):
            summary_path = os.path.join(scratch, f"summary-{number}.json")
            print(f"\nRehearsal run {number} of 2", flush=True)
            code = commands.main(rehearsal_args(pipeline_root, summary_path, args.image))
            if not os.path.exists(summary_path):
                print(f"rehearsal run {number} ended with exit status {code} before writing its summary",
                      file=sys.stderr)
                return code or 1
            with open(summary_path, encoding="utf-8") as f:
                summaries.append(json.load(f))
    problems = problems_with(*summaries)
    for problem in problems:
        print(f"rehearsal: {problem}", file=sys.stderr)
    print(json.dumps({"isolated": True, "runs": summaries}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
