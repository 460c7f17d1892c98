"""The content-keyed step cache: what makes a key, what is restored, and what a person is told."""

import os
from dataclasses import dataclass, field

import pytest

from components.common.storage import atomic_files, gcsfuse, step_cache
from components.ingest.source_digest import source_digest
from tests.conftest import run_at_once


@dataclass
class FakeArtifact:
    """The two fields of a KFP artifact the cache uses (a real one needs a running executor)."""

    path: str
    metadata: dict = field(default_factory=dict)


def producing_step(cache_root, tmp_path, run, *, value="one", use_cache=True, inputs=None, content="features"):
    """Runs a step that writes `content` to its output unless the cache has it; returns (output, ran)."""
    output = FakeArtifact(str(tmp_path / f"run{run}" / "out"))
    cache = step_cache.open_step(cache_root, "make", params={"value": value}, inputs=inputs or {},
                                 outputs={"out": output}, use_cache=use_cache)
    if cache.restore():
        return output, False
    atomic_files.write_text(os.path.join(output.path, "data.txt"), content)
    output.metadata["count"] = 3
    cache.save()
    return output, True


def decision(artifact):
    return atomic_files.read_json(os.path.join(artifact.path, step_cache.DECISION_FILE))


def test_a_second_identical_step_restores_files_metadata_and_key(tmp_path):
    cache_root = str(tmp_path / "cache")
    first, ran = producing_step(cache_root, tmp_path, 1)
    assert ran and decision(first) == {"key": decision(first)["key"], "reused": False,
                                       "why": "nothing cached for this step yet"}
    second, ran = producing_step(cache_root, tmp_path, 2, content="never written")
    assert not ran
    assert open(os.path.join(second.path, "data.txt")).read() == "features"
    assert second.metadata == {"count": 3}
    assert decision(second)["reused"] and "inputs, parameters and code unchanged" in decision(second)["why"]
    # Downstream keys chain through the key file, not through paths.
    assert step_cache.artifact_key(second.path) == step_cache.artifact_key(first.path) == decision(first)["key"]


def test_a_changed_parameter_or_input_runs_and_says_what_changed(tmp_path):
    cache_root = str(tmp_path / "cache")
    producing_step(cache_root, tmp_path, 1)
    changed, ran = producing_step(cache_root, tmp_path, 2, value="two")
    assert ran and decision(changed)["why"] == "changed since the last cached run: param:value"

    upstream = FakeArtifact(str(tmp_path / "upstream"))
    atomic_files.write_text(os.path.join(upstream.path, "x"), "a")
    producing_step(cache_root, tmp_path, 3, value="two", inputs={"data": upstream})
    atomic_files.write_text(os.path.join(upstream.path, "x"), "b")
    again, ran = producing_step(cache_root, tmp_path, 4, value="two", inputs={"data": upstream})
    assert ran and decision(again)["why"] == "changed since the last cached run: input:data"


def test_no_cache_forces_a_run_and_still_stores_the_result(tmp_path):
    cache_root = str(tmp_path / "cache")
    producing_step(cache_root, tmp_path, 1, content="old")
    forced, ran = producing_step(cache_root, tmp_path, 2, use_cache=False, content="old")
    assert ran and decision(forced)["why"] == "use_cache=false: forced to run"
    _, ran = producing_step(cache_root, tmp_path, 3)
    assert not ran


def test_without_a_cache_root_nothing_is_stored_but_outputs_carry_their_key(tmp_path):
    output, ran = producing_step("", tmp_path, 1)
    assert ran and decision(output)["why"] == "caching is off for this run"
    assert os.path.isfile(os.path.join(output.path, step_cache.KEY_FILE))
    assert not (tmp_path / "cache").exists()


def test_an_unfinished_entry_is_never_reused(tmp_path):
    cache_root = str(tmp_path / "cache")
    first, _ = producing_step(cache_root, tmp_path, 1)
    entry = os.path.join(cache_root, "make", decision(first)["key"])
    os.remove(os.path.join(entry, step_cache.ENTRY_FILE))  # as if killed before the rename
    _, ran = producing_step(cache_root, tmp_path, 2)
    assert ran


def test_steps_saving_the_same_key_at_once_leave_one_complete_entry(tmp_path):
    cache_root = str(tmp_path / "cache")
    _, errors = run_at_once(lambda index: producing_step(cache_root, tmp_path, index), 6)
    assert not errors
    entries = [name for name in os.listdir(os.path.join(cache_root, "make")) if not name.endswith(".json")]
    assert len(entries) == 1 and not entries[0].startswith(".staging")
    assert os.path.isfile(os.path.join(cache_root, "make", entries[0], "out", "data.txt"))


def test_source_digest_follows_the_bytes_of_a_folder_and_a_manifest(tmp_path):
    atomic_files.write_text(str(tmp_path / "tree" / "cat" / "a.jpg"), "a")
    before = source_digest(str(tmp_path / "tree"))
    os.utime(tmp_path / "tree" / "cat" / "a.jpg", (0, 0))
    assert source_digest(str(tmp_path / "tree")) == before  # a touch is not a change
    atomic_files.write_text(str(tmp_path / "tree" / "cat" / "a.jpg"), "b")
    assert source_digest(str(tmp_path / "tree")) != before

    atomic_files.write_text(str(tmp_path / "list.csv"), "uri,label\ntree/cat/a.jpg,cat\n")
    listed = source_digest(str(tmp_path / "list.csv"))
    atomic_files.write_text(str(tmp_path / "tree" / "cat" / "a.jpg"), "c")  # the manifest itself is unchanged
    assert source_digest(str(tmp_path / "list.csv")) != listed
    assert source_digest("tfds:mnist") is None


@pytest.mark.parametrize("value, expected", [("imagenet", ""), ("none", "")])
def test_a_parameter_that_names_no_file_has_no_digest(value, expected):
    assert step_cache.path_digest(value) == expected


@pytest.mark.parametrize("cache_root", ["/gcs/bucket/cache", "/gcs/bucket/cache/../other"])
def test_a_cache_root_on_vertex_cloud_storage_fuse_is_refused_naming_it(cache_root, tmp_path):
    with pytest.raises(ValueError, match=f"cache_root '{cache_root}' is on Cloud Storage FUSE.*use gs://bucket/"):
        step_cache.check_cache_root(cache_root)
    with pytest.raises(ValueError, match="Cloud Storage FUSE"):  # every step checks it before anything else
        producing_step(cache_root, tmp_path, 1)


def test_a_cache_root_on_a_gcsfuse_mount_is_refused_and_others_are_not(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mount_point = tmp_path / "my bucket"
    escaped = str(mount_point).replace(" ", "\\040")
    mounts.write_text(f"proc /proc proc rw 0 0\nbucket {escaped} fuse.gcsfuse rw,nosuid 0 0\n")
    monkeypatch.setattr(gcsfuse, "MOUNTS_FILE", str(mounts))
    cache_root = str(mount_point / "cache")
    with pytest.raises(ValueError, match=f"cache_root '{cache_root}' is on Cloud Storage FUSE "
                                         f"\\(a fuse.gcsfuse mount at {mount_point}\\).*gs://BUCKET/"):
        step_cache.check_cache_root(cache_root)
    for accepted in ["", str(tmp_path / "my bucketful"), "gs://bucket/cache", "/gcsx/cache"]:
        step_cache.check_cache_root(accepted)
    with pytest.raises(ValueError, match="cache_root 'gs://': gs:// URI without a bucket"):
        step_cache.check_cache_root("gs://")


def test_an_entry_that_cannot_be_moved_into_place_fails_naming_it(tmp_path):
    key = decision(producing_step("", tmp_path, 0)[0])["key"]
    cache_root = tmp_path / "cache"
    (cache_root / "make").mkdir(parents=True)
    (cache_root / "make" / key).write_text("a file where the entry directory goes")
    with pytest.raises(NotADirectoryError, match=f"cannot commit the cache entry.*{cache_root / 'make' / key}"):
        producing_step(str(cache_root), tmp_path, 1)
    assert [name for name in os.listdir(cache_root / "make") if name.startswith(".staging")] == []


def test_an_output_that_cannot_be_cached_is_keyed_by_what_was_written(tmp_path):
    """A tfds source has no digest: its key would be the same every run, and let later steps reuse
    results made from other data. The key it passes down is a digest of what it wrote."""

    def uncacheable_run(run, content):
        output = FakeArtifact(str(tmp_path / f"run{run}" / "out"))
        cache = step_cache.open_step(str(tmp_path / "cache"), "ingest", params={"source": "tfds:beans"}, inputs={},
                                     outputs={"out": output}, not_cacheable="no content digest")
        assert not cache.restore()
        atomic_files.write_text(os.path.join(output.path, "examples"), content)
        cache.save()
        return step_cache.artifact_key(output.path), cache.key

    first, key = uncacheable_run(1, "data of monday")
    same, _ = uncacheable_run(2, "data of monday")
    changed, same_key = uncacheable_run(3, "data of tuesday")
    assert first == same != changed  # the passed-down key follows the bytes
    assert key == same_key and first != key  # while the parameters alone say nothing changed


def test_library_versions_are_part_of_every_key(tmp_path, monkeypatch):
    output = FakeArtifact(str(tmp_path / "out"))
    before = step_cache.open_step("", "make", params={}, inputs={}, outputs={"out": output}).key
    assert "tensorflow==" in step_cache.library_versions() and "keras==" in step_cache.library_versions()
    monkeypatch.setattr(step_cache, "library_versions", lambda: "tensorflow==99.0 keras==99.0 pillow==1 numpy==1")
    assert step_cache.open_step("", "make", params={}, inputs={}, outputs={"out": output}).key != before


def test_source_digest_covers_class_folders_behind_links_as_ingest_reads_them(tmp_path):
    """Datasets often live on a mounted volume: `cats -> /data/cats`. An image added behind the
    link is read by ingest, so it must change the digest, or the old data is served as new."""
    from components.ingest import core as ingest_core
    from tests.conftest import make_image, write_image

    for label, color in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        write_image(tmp_path / "volume" / label / "0.png", make_image(color))
        (tmp_path / "tree").mkdir(exist_ok=True)
        os.symlink(tmp_path / "volume" / label, tmp_path / "tree" / label)
    before = source_digest(str(tmp_path / "tree"))
    assert ingest_core.run(source=str(tmp_path / "tree"), output_dir=str(tmp_path / "out1")).count == 2

    write_image(tmp_path / "volume" / "cats" / "1.png", make_image((200, 40, 40), seed=5))

    assert ingest_core.run(source=str(tmp_path / "tree"), output_dir=str(tmp_path / "out2")).count == 3
    assert source_digest(str(tmp_path / "tree")) != before
