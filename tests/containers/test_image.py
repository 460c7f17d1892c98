"""The container image: built by docker/build_image.sh (as `make image` does), then run.

Inside the image: the `headstart` command, the non-root user, and the ingest step's core on a
tiny folder of images mounted from the host, its output checked on the host.
"""

import json

from tests.conftest import CLASS_COLORS, make_image, write_image
from tests.containers.conftest import output_of

IMAGES_PER_CLASS = 6


def test_exit_codes_come_through(engine):
    """The checks below rely on the exit code: a failing command must not read as success."""
    assert engine.run("sh", "-c", "exit 7").returncode == 7


def test_headstart_help(engine):
    completed = engine.run("headstart", "--help")

    assert completed.returncode == 0, output_of(completed)
    assert completed.stdout.startswith("usage: headstart")
    for command in ("run", "compile", "submit", "predict", "serve"):
        assert command in completed.stdout


def test_runs_as_non_root_uid_1000(engine):
    completed = engine.run("sh", "-c", "id -u; id -g; echo $HOME")

    assert completed.returncode == 0, output_of(completed)
    assert completed.stdout.split() == ["1000", "1000", "/home/headstart"]


def test_ingest_step_runs_in_the_image(engine, tmp_path):
    """The ingest core, as the pipeline's ingest component calls it, on images mounted from the host."""
    data = tmp_path / "data"
    for label, color in CLASS_COLORS.items():
        for index in range(IMAGES_PER_CLASS):
            suffix = "png" if index % 2 else "jpg"
            write_image(data / "images" / label / f"{label}_{index}.{suffix}", make_image(color, seed=index))
    # The container's user is uid 1000, not the owner: it must be able to write the output here.
    for path in [data, *data.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    script = (
        "from components.ingest import core\n"
        "r = core.run(source='/data/images', output_dir='/data/out', records_per_shard=5)\n"
        "print('count', r.count, 'labels', ','.join(r.labels))\n"
    )

    completed = engine.run("python3", "-c", script, volumes=(f"{data}:/data",))

    assert completed.returncode == 0, output_of(completed)
    total = IMAGES_PER_CLASS * len(CLASS_COLORS)
    assert f"count {total} labels blue,red" in completed.stdout
    out = data / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == total and manifest["source"] == "/data/images"
    assert manifest["labels"] == ["blue", "red"] and manifest["duplicates"] == 0
    assert (out / "labels.txt").read_text().split() == ["blue", "red"]
    shards = sorted(path.name for path in out.glob("examples-*.tfrecord"))
    assert shards == [f"examples-{index:05d}.tfrecord" for index in range(-(-total // 5))]
    assert all((out / name).stat().st_size > 0 for name in shards)
    assert not list(out.glob(".tmp-*"))
    # Written by the container's user, not by root.
    assert {(out / name).stat().st_uid for name in [*shards, "manifest.json"]} == {1000}
