"""Content-keyed reuse of a step's outputs.

A step whose inputs, parameters and code are unchanged is not run again; its outputs are restored
from the cache.

kfp.local caches nothing, and a cluster's KFP cache keys on artifact URIs and parameter strings,
which miss what matters here (the bytes of a source folder, a weights file, our own code). So a
step computes its own key from:
    code      a digest of the `components` package's sources,
    param:*   each parameter's JSON value,
    input:*   each input artifact's key (the key of the step that made it, kept in a hidden
              file inside it; a digest of its files for artifacts made elsewhere),
    extra:*   what the step reads from outside its artifacts (a source folder, a weights file).
An entry holds a copy of every output and `entry.json` (their KFP metadata), and counts only
once `entry.json` exists. The cache root is a local directory or a gs:// prefix:
    local   `<cache_root>/<step>/<key>/{<output>/..., entry.json}`, written under a temporary
            name and renamed, so it is complete or absent;
    gs://   `<cache_root>/<step>/<key>/<save id>/<output>/...` uploaded first, then
            `<cache_root>/<step>/<key>/entry.json`, which names the save id, created with
            `if_generation_match=0`: of two runs saving one key exactly one commits, its files
            are never overwritten, and what a killed run uploaded is never read.
A root on Cloud Storage FUSE (Vertex AI's `/gcs/...`) is refused: a directory rename there is
refused or not atomic, so the local way of committing is not safe on it.
The step's first output also gets `.headstart-cache.json`, which says whether the step ran or
was reused and why; the run summary reads it.

This module imports nothing heavy, so a step that is reused never imports TensorFlow.
"""

import datetime
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from components.common.contract.artifact_files import RESOURCES_FILE
from components.common.storage import atomic_files, gcs, gcsfuse

logger = logging.getLogger(__name__)

KEY_FILE = ".headstart-key"
DECISION_FILE = ".headstart-cache.json"
ENTRY_FILE = "entry.json"
LATEST_FILE = "latest.json"
# components/, whose code the key covers: this file is components/common/storage/step_cache.py.
_COMPONENTS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NOT_CONTENT = (DECISION_FILE, RESOURCES_FILE)
# What entry.json says each output was, so a gs:// entry is restored without listing it.
_DIRECTORY, _FILE, _ABSENT = "directory", "file", "absent"


class Artifact(Protocol):
    """What the cache needs of a KFP artifact: where it is and its metadata."""

    path: str
    metadata: dict


def _digest(*chunks: bytes) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(len(chunk).to_bytes(8, "little"))
        hasher.update(chunk)
    return hasher.hexdigest()


def _key_of(parts: dict[str, str]) -> str:
    return _digest(*(f"{name}={value}".encode() for name, value in sorted(parts.items())))


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def tree_digest(root: str) -> str:
    """A digest of every file under `root` (relative paths and bytes), or of `root` if it is a file.

    Links to files are followed, as ingest reads them; links to folders are not (ingest does not
    walk them, and a link loop would never end). A file that cannot be read counts by its error.
    """
    if os.path.isfile(root):
        return file_digest(root)
    hasher = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            if name in _NOT_CONTENT:
                continue
            path = os.path.join(directory, name)
            try:
                content = file_digest(path)
            except OSError as error:
                content = f"unreadable: {error.strerror}"
            hasher.update(os.path.relpath(path, root).encode() + b"\0" + content.encode())
    return hasher.hexdigest()


def path_digest(value: str) -> str:
    """The digest of a file, folder or gs:// prefix a parameter names, or "" for a name ("imagenet")."""
    if gcs.is_gcs(value):  # one object (a weights file), else every object under the prefix
        return gcs.object_hash(value) or gcs.tree_digest(value)
    return tree_digest(value) if os.path.exists(value) else ""


# What a step's outputs depend on besides our code: the decoder (Pillow, TensorFlow's image ops),
# the networks' numerics (TensorFlow, Keras, NumPy) and their file formats.
KEYED_LIBRARIES = ("tensorflow", "keras", "pillow", "numpy")


@functools.cache
def library_versions() -> str:
    """The installed versions of KEYED_LIBRARIES, read from package metadata (nothing is imported)."""
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return " ".join(f"{name}=={version(name)}" for name in KEYED_LIBRARIES)


@functools.cache
def code_version() -> str:
    """A digest of every Python source under `components/`.

    Coarse on purpose: steps import each other's modules, and a stale reuse after a code change
    costs more than one full run.
    """
    chunks = []
    for directory, subdirs, files in os.walk(_COMPONENTS_DIR):
        subdirs[:] = sorted(name for name in subdirs if name != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    chunks += [os.path.relpath(path, _COMPONENTS_DIR).encode(), f.read()]
    return _digest(*chunks)


def artifact_key(path: str) -> str:
    """The content key of an input artifact: its producer's key, or a digest of its files."""
    key_path = os.path.join(path, KEY_FILE)
    if os.path.isfile(key_path):
        with open(key_path, encoding="utf-8") as f:
            return f.read().strip()
    return tree_digest(path) if os.path.exists(path) else "absent"


def joined_key(*paths: str) -> str:
    """One key for several artifacts taken together (a base network and its head: one model)."""
    return _digest(*(artifact_key(path).encode() for path in paths))


def _link_or_copy(source: str, destination: str) -> None:
    # Entries and artifacts are never modified in place, so a hard link is as good as a copy.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _copy_output(source: str, destination: str) -> None:
    """Copies an output, a file or a directory; a missing one (metrics kept as metadata) is skipped."""
    if os.path.isdir(source):
        shutil.copytree(source, destination, copy_function=_link_or_copy, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*_NOT_CONTENT))
    elif os.path.isfile(source):
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        if os.path.exists(destination):
            os.remove(destination)
        _link_or_copy(source, destination)


def cache_location(cache_root: str, *names: str) -> str:
    """`names` joined under a cache root, a local directory or a gs:// prefix."""
    return gcs.join(cache_root, *names) if gcs.is_gcs(cache_root) else os.path.join(cache_root, *names)


def check_cache_root(cache_root: str) -> None:
    """Refuses a cache root where entries could not be committed safely.

    A local entry is committed by renaming its directory into place. Cloud Storage FUSE refuses
    a directory rename or carries it out object by object, so another run could read half an
    entry; a gs:// root commits with a generation precondition instead.

    Args:
        cache_root: the cache root a run was given; "" (caching off) is accepted.

    Raises:
        ValueError: `cache_root` is a gs:// URI without a bucket, a `/gcs/...` path, or a path on
            a fuse.gcsfuse mount.
    """
    if not cache_root:
        return
    if gcs.is_gcs(cache_root):
        try:
            gcs.split(cache_root)
        except ValueError as error:
            raise ValueError(f"cache_root {cache_root!r}: {error}") from error
        return
    fuse = gcsfuse.on_gcsfuse(cache_root)
    if fuse:
        where, instead = fuse
        raise ValueError(f"cache_root {cache_root!r} is on Cloud Storage FUSE ({where}), where a directory rename "
                         f"is refused or not atomic, so a cache entry could be read half-written: use {instead} "
                         "instead")


def _read_json_if_present(location: str) -> Any | None:
    """The JSON at a local path or gs:// URI, or None if there is nothing there."""
    if gcs.is_gcs(location):
        return json.loads(gcs.read_bytes(location)) if gcs.exists(location) else None
    return atomic_files.read_json(location) if os.path.isfile(location) else None


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def _upload_output(source: str, uri: str) -> str:
    """Uploads an output, a file or a directory, under `uri`; returns which it was (see _DIRECTORY).

    Overwriting is allowed: the prefix belongs to this save alone and nothing reads it until
    entry.json names it.
    """
    if os.path.isdir(source):
        files = []
        for directory, subdirs, names in os.walk(source):
            subdirs.sort()
            files += [(os.path.join(directory, name),
                       gcs.join(uri, *os.path.relpath(os.path.join(directory, name), source).split(os.sep)))
                      for name in sorted(names) if name not in _NOT_CONTENT]
        gcs.upload_many(files, overwrite=True)
        return _DIRECTORY
    if os.path.isfile(source):
        gcs.upload_file(source, uri, overwrite=True)
        return _FILE
    return _ABSENT


def _download_output(entry_uri: str, entry: dict, name: str, destination: str) -> None:
    """Fills one output from a gs:// entry, as `_copy_output` does from a local one."""
    source = gcs.join(entry_uri, entry["files"], name)
    kind = entry["outputs"].get(name, _ABSENT)
    if kind == _DIRECTORY:
        os.makedirs(destination, exist_ok=True)  # an empty directory has no objects to make it
        gcs.download_tree(source, destination)
    elif kind == _FILE:
        gcs.download_file(source, destination)


def _commit_local(staging: str, entry_dir: str, step: str) -> None:
    """Renames a staged entry into place; only finding one there already (a lost race) is not an error."""
    try:
        os.rename(staging, entry_dir)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise OSError(error.errno, f"cannot commit the cache entry ({error.strerror})", entry_dir) from error
        logger.info("%s: another run stored %s first (the same key, so the same content): keeping theirs",
                    step, entry_dir)


def _discard_upload(uri: str) -> None:
    """Deletes what a save that lost the race uploaded; failing to is only untidy, never wrong."""
    try:
        gcs.delete_tree(uri)
    except gcs.RemoteStorageError as error:
        logger.warning("step cache: could not delete the unused upload %s (nothing reads it): %s", uri, error)


@dataclass
class StepCache:
    """One step's view of the cache for one run.

    Attributes:
        root: the cache directory; "" when caching is off for this run.
        step: the step's name, as the pipeline names its task.
        parts: what the key is made of, name -> digest (see the module docstring).
        outputs: the step's output artifacts by name; the first is a directory.
        force_run: why the step must run this time even if an entry exists (`--no-use-cache`); its
            result is still saved.
        not_cacheable: why this step's result must be neither reused nor saved, if so.
    """

    root: str
    step: str
    parts: dict[str, str]
    outputs: dict[str, Artifact]
    force_run: str | None = None
    not_cacheable: str | None = None
    _started: datetime.datetime = field(default_factory=datetime.datetime.now)
    _decision: dict = field(default_factory=lambda: {"reused": False, "why": "the cache was not consulted"})

    @property
    def key(self) -> str:
        """The entry's key: a digest of every part (code, parameters, inputs, extras)."""
        return _key_of(self.parts)

    def key_without(self, *names: str) -> str:
        """The key of all parts but the named ones: for results that do not depend on them."""
        return _key_of({name: value for name, value in self.parts.items() if name not in names})

    def _entry_location(self) -> str:
        return cache_location(self.root, self.step, self.key)

    def restore(self) -> bool:
        """Fills the outputs from a matching entry and returns True; False if the step must run."""
        if not self.root:
            return self._will_run("caching is off for this run")
        if self.not_cacheable:
            return self._will_run(f"not cacheable: {self.not_cacheable}")
        if self.force_run:
            return self._will_run(self.force_run)
        entry_location = self._entry_location()
        entry = _read_json_if_present(cache_location(entry_location, ENTRY_FILE))
        if entry is None:
            return self._will_run(self._what_changed())
        for name, artifact in self.outputs.items():
            if gcs.is_gcs(entry_location):
                _download_output(entry_location, entry, name, artifact.path)
            else:
                _copy_output(os.path.join(entry_location, name), artifact.path)
            artifact.metadata.update(entry["metadata"].get(name, {}))
        self.record_reused(f"inputs, parameters and code unchanged since {entry['saved']} "
                           f"(key {self.key[:12]}; it ran for {entry['seconds']:.1f} s then)")
        return True

    def record_reused(self, why: str) -> None:
        """Says in the outputs that the step's work was not done again, and why."""
        self._decision = {"reused": True, "why": why}
        self._write_decision()
        logger.info("%s: reused: %s", self.step, why)

    def save(self) -> None:
        """Marks the outputs with this key and, with caching on, stores them as an entry.

        Raises:
            OSError, gcs.RemoteStorageError: the entry could not be stored, for any reason but
                another run having stored the same key first.
        """
        # A key made of what could not be digested (a tfds name, say) is the same on every run,
        # and would let every later step reuse results from other data: such outputs are keyed by
        # what the step wrote instead.
        written_key = self._written_key() if self.not_cacheable else self.key
        for artifact in self.outputs.values():
            if os.path.isdir(artifact.path):
                atomic_files.write_text(os.path.join(artifact.path, KEY_FILE), written_key + "\n")
        self._write_decision()
        if not self.root or self.not_cacheable:
            return
        record = self._entry_record()
        if gcs.is_gcs(self.root):
            self._save_to_gcs(record)
        else:
            self._save_locally(record)
        latest = {"key": self.key, "parts": self.parts}
        latest_location = cache_location(self.root, self.step, LATEST_FILE)
        if gcs.is_gcs(latest_location):
            gcs.upload_bytes(_json_bytes(latest), latest_location, overwrite=True)
        else:
            atomic_files.write_json(latest_location, latest)

    def _written_key(self) -> str:
        """A digest of the outputs' files as written; called before the key files go in."""
        return _digest(*(f"{name}={tree_digest(artifact.path) if os.path.exists(artifact.path) else 'absent'}".encode()
                         for name, artifact in sorted(self.outputs.items())))

    def _entry_record(self) -> dict:
        return {
            "step": self.step, "key": self.key, "parts": self.parts,
            "seconds": (datetime.datetime.now() - self._started).total_seconds(),
            "saved": datetime.datetime.now().isoformat(timespec="seconds"),
            "metadata": {name: dict(artifact.metadata) for name, artifact in self.outputs.items()},
        }

    def _save_locally(self, record: dict) -> None:
        step_dir = os.path.join(self.root, self.step)
        os.makedirs(step_dir, exist_ok=True)
        staging = tempfile.mkdtemp(dir=step_dir, prefix=".staging-")
        try:
            for name, artifact in self.outputs.items():
                _copy_output(artifact.path, os.path.join(staging, name))
            atomic_files.write_json(os.path.join(staging, ENTRY_FILE), record)
            os.chmod(staging, 0o755)
            _commit_local(staging, self._entry_location(), self.step)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _save_to_gcs(self, record: dict) -> None:
        entry_uri = self._entry_location()
        save_id = uuid.uuid4().hex
        files_uri = gcs.join(entry_uri, save_id)
        outputs = {name: _upload_output(artifact.path, gcs.join(files_uri, name))
                   for name, artifact in self.outputs.items()}
        entry_file = gcs.join(entry_uri, ENTRY_FILE)
        try:
            gcs.upload_bytes(_json_bytes({**record, "files": save_id, "outputs": outputs}), entry_file)
        except gcs.AlreadyExists:
            # A retried create answers 412 when its first attempt did commit: then the entry
            # there is this save's own, and deleting its files would leave it naming nothing.
            if json.loads(gcs.read_bytes(entry_file)).get("files") == save_id:
                logger.info("%s: stored %s (a retried commit found its own first attempt)", self.step, entry_uri)
                return
            logger.info("%s: another run stored %s first (the same key, so the same content): keeping theirs",
                        self.step, entry_uri)
            _discard_upload(files_uri)

    def _what_changed(self) -> str:
        latest = _read_json_if_present(cache_location(self.root, self.step, LATEST_FILE))
        if latest is None:
            return "nothing cached for this step yet"
        before = latest["parts"]
        changed = sorted(name for name in {*before, *self.parts} if before.get(name) != self.parts.get(name))
        return "changed since the last cached run: " + ", ".join(changed) if changed else "no matching entry"

    def _will_run(self, why: str) -> bool:
        self._decision = {"reused": False, "why": why}
        logger.info("%s: runs: %s", self.step, why)
        return False

    def _write_decision(self) -> None:
        first = next(iter(self.outputs.values()))
        atomic_files.write_json(os.path.join(first.path, DECISION_FILE), {"key": self.key, **self._decision})


def open_step(cache_root: str, step: str, *, params: dict[str, Any], inputs: dict[str, Artifact],
              outputs: dict[str, Artifact], extra: dict[str, str] | None = None, use_cache: bool = True,
              force_run: str | None = None, not_cacheable: str | None = None) -> StepCache:
    """The cache of one step for this run; call `restore()`, and `save()` after running.

    Args:
        cache_root: the cache directory or gs:// prefix ("" for no caching).
        step: the task name.
        params: the step's parameters (JSON-serializable).
        inputs: input artifacts by name.
        outputs: output artifacts by name; the first must be a directory.
        extra: digests of what the step reads from outside its artifacts.
        use_cache: False to force the step to run (`--no-use-cache`).
        force_run: another reason the step must run this time; its result is still saved.
        not_cacheable: a reason this step's result must be neither reused nor saved.

    Raises:
        ValueError: `cache_root` is on Cloud Storage FUSE (see `check_cache_root`).
    """
    check_cache_root(cache_root)
    parts = {"code": code_version(), "libraries": library_versions()}
    parts.update({f"param:{name}": json.dumps(value, sort_keys=True) for name, value in params.items()})
    parts.update({f"input:{name}": artifact_key(artifact.path) for name, artifact in inputs.items()})
    parts.update({f"extra:{name}": value for name, value in (extra or {}).items()})
    if not use_cache:
        force_run = "use_cache=false: forced to run"
    return StepCache(root=cache_root, step=step, parts=parts, outputs=outputs, force_run=force_run,
                     not_cacheable=not_cacheable)
