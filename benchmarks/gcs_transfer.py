"""Moving many small objects to and from Cloud Storage: one at a time against `transfer_manager`'s threads.

    python -m benchmarks.gcs_transfer [--objects 5000] [--kilobytes 8] [--rounds 1]

Against fake-gcs-server on this machine (the emulator the tests use), in one run and side by
side: N files of K KB of random bytes are uploaded one object at a time (`gcs.upload_file` in a
loop, as the step cache and push did) and then with `gcs.upload_many`, each under its own
prefix with `if_generation_match=0`; each prefix is then downloaded one object at a time
(`gcs.download_file` in a loop, as `download_tree` did) and with `gcs.download_tree`. It prints
the seconds of each and the ratios. A real bucket is farther away than a local emulator, so
there each object waits longer and the threads gain more.
"""

import argparse
import os
import tempfile
import time

from components.common.storage import gcs
from pipeline.devtools.storage_emulator import cloud_storage_emulator

BUCKET = "transfer-bench"


def timed(work) -> float:
    """Seconds `work()` took."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison and prints it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gcs_transfer", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=5000, help="how many objects (default: %(default)s)")
    parser.add_argument("--kilobytes", type=int, default=8, help="each object's size (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="headstart-transfer-") as scratch, cloud_storage_emulator(BUCKET):
        source = os.path.join(scratch, "source")
        names = [f"shard-{index // 100:03d}/object-{index:05d}.bin" for index in range(args.objects)]
        for name in names:
            os.makedirs(os.path.dirname(os.path.join(source, name)), exist_ok=True)
            with open(os.path.join(source, name), "wb") as f:
                f.write(os.urandom(args.kilobytes * 1024))
        for round_index in range(args.rounds):
            figures = {}
            for way in ("one_at_a_time", "transfer_manager"):
                prefix = f"gs://{BUCKET}/round{round_index}/{way}"
                pairs = [(os.path.join(source, name), gcs.join(prefix, name)) for name in names]
                if way == "one_at_a_time":
                    upload = lambda: [gcs.upload_file(path, uri) for path, uri in pairs]  # noqa: E731
                    download = lambda target: [gcs.download_file(gcs.join(prefix, name),  # noqa: E731
                                                                 os.path.join(target, name)) for name in names]
                else:
                    upload = lambda: gcs.upload_many(pairs)  # noqa: E731
                    download = lambda target: gcs.download_tree(prefix, target)  # noqa: E731
                figures[f"{way} upload"] = timed(upload)
                target = os.path.join(scratch, f"round{round_index}-{way}")
                figures[f"{way} download"] = timed(lambda: download(target))
                assert sum(len(files) for _, _, files in os.walk(target)) == args.objects
            print(f"round {round_index + 1}: {args.objects} objects of {args.kilobytes} KB")
            for direction in ("upload", "download"):
                before, after = figures[f"one_at_a_time {direction}"], figures[f"transfer_manager {direction}"]
                print(f"  {direction:<8} one at a time {before:7.1f} s, transfer_manager {after:7.1f} s: "
                      f"{before / after:.2f} times as fast")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
