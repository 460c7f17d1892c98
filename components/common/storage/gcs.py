"""Cloud Storage behind the project's storage functions: `gs://bucket/prefix` URIs.

TensorFlow's own gs:// file system cannot be pointed at an emulator and Beam's needs a runner
with credentials, so the steps keep reading and writing local paths: a gs:// source is
downloaded by ingest, a champion in a gs:// serving root is downloaded to be scored, and a
pushed model is exported locally, validated, then uploaded. The google-cloud-storage client
honours STORAGE_EMULATOR_HOST, which is how the tests point it at an emulator.

Every call is retried with exponential backoff on the errors Cloud Storage calls transient
(429, 5xx, dropped connections) and then fails with a `RemoteStorageError` that names the URI.
Uploads that must not overwrite (a pushed version) carry `if_generation_match=0`. Many objects
move TRANSFER_WORKERS at a time (`transfer_manager`, in threads), with the same retries and
preconditions.
"""

import functools
import hashlib
import logging
import os
from typing import Any, Callable, Iterator, TypeVar

logger = logging.getLogger(__name__)

SCHEME = "gs://"
# Objects moved at once by `upload_many` and `download_tree`: threads, since the work is waiting on
# the network, each with its own connection from the client's pool (10 by default).
TRANSFER_WORKERS = 8
# A progress line after every this many objects of a transfer.
PROGRESS_EVERY = 500
# How long one operation keeps retrying before it fails, in seconds.
RETRY_SECONDS_ENV = "HEADSTART_GCS_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 120.0

T = TypeVar("T")


class RemoteStorageError(RuntimeError):
    """A Cloud Storage operation that failed for good (after retries where they could help)."""


class AlreadyExists(RemoteStorageError):
    """An upload with `if_generation_match=0` found the object there: someone else wrote it first."""


def is_gcs(uri: str) -> bool:
    """Whether `uri` is a gs:// URI rather than a local path."""
    return uri.startswith(SCHEME)


def split(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b")."""
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri[len(SCHEME):].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri!r}")
    return bucket, prefix.strip("/")


def join(uri: str, *names: str) -> str:
    """Joins names onto a gs:// URI with single slashes: `join("gs://b/a/", "/c")` -> "gs://b/a/c"."""
    return "/".join([uri.rstrip("/"), *(name.strip("/") for name in names)])


def _client():
    from google.cloud import storage

    return storage.Client()


def _retry_seconds() -> float:
    return float(os.environ.get(RETRY_SECONDS_ENV, DEFAULT_RETRY_SECONDS))


class _RetryNotices(logging.Handler):
    """Shows the client's retries, which it logs at debug level only, as this module's warnings.

    A transient error that is retried would otherwise look like a hung step for up to
    RETRY_SECONDS; its message says the error and how long the client sleeps before trying again.
    """

    def emit(self, record: logging.LogRecord) -> None:
        logger.warning("gcs: %s", record.getMessage())


@functools.cache
def _show_retries() -> None:
    retry_logger = logging.getLogger("google.api_core.retry")
    retry_logger.setLevel(logging.DEBUG)
    retry_logger.addHandler(_RetryNotices(logging.DEBUG))
    retry_logger.propagate = False  # shown once, by the handler, not again at debug level


def _retry():
    """The client's own retry policy (exponential backoff on transient errors), bounded in time."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    _show_retries()
    return DEFAULT_RETRY.with_timeout(_retry_seconds())


def _failure(what: str, uri: str, error: Exception) -> Exception | None:
    """The client's error as this module raises it, naming the URI; None for one it does not expect."""
    from google.api_core import exceptions

    if isinstance(error, exceptions.PreconditionFailed):
        return AlreadyExists(f"{uri}: already exists, not overwritten")
    if isinstance(error, exceptions.NotFound):
        return RemoteStorageError(f"{uri}: not found ({what})")
    if isinstance(error, (exceptions.GoogleAPIError, OSError)):
        return RemoteStorageError(f"{uri}: {what} failed after retrying for up to {_retry_seconds():.0f} s: {error}")
    return None


def _call(what: str, uri: str, operation: Callable[[], T]) -> T:
    """Runs one client call, turning its failure into a RemoteStorageError naming the URI."""
    try:
        return operation()
    except Exception as error:
        failure = _failure(what, uri, error)
        if failure is None:
            raise
        raise failure from error


def _content_hash(blob) -> str:
    return blob.md5_hash or blob.crc32c or str(blob.size)


def _described_objects(uri: str, describe: Callable[[Any], T]) -> Iterator[tuple[str, T]]:
    """(path relative to `uri`, describe(blob)) of every object under the prefix, sorted by path."""
    bucket, prefix = split(uri)
    prefix = f"{prefix}/" if prefix else ""

    def listing():
        blobs = _client().list_blobs(bucket, prefix=prefix, retry=_retry())
        return sorted((blob.name[len(prefix):], describe(blob)) for blob in blobs)

    for name, description in _call("listing", uri, listing):
        if name and not name.endswith("/"):
            yield name, description


def list_objects(uri: str) -> Iterator[tuple[str, str]]:
    """(path relative to `uri`, content hash) of every object under the prefix, sorted by path."""
    return _described_objects(uri, _content_hash)


def tree_digest(uri: str) -> str:
    """A digest of every object's path and content hash under the prefix (nothing is downloaded)."""
    hasher = hashlib.sha256()
    for name, content_hash in list_objects(uri):
        hasher.update(f"{name}\0{content_hash}\0".encode())
    return hasher.hexdigest()


def child_names(uri: str) -> list[str]:
    """The names one level below `uri` (files and "directories")."""
    return sorted({name.split("/", 1)[0] for name, _ in list_objects(uri)})


def _blob(uri: str):
    bucket, name = split(uri)
    return _client().bucket(bucket).blob(name)


def exists(uri: str) -> bool:
    """Whether the object at `uri` exists."""
    return _call("checking", uri, lambda: _blob(uri).exists(retry=_retry()))


def read_bytes(uri: str) -> bytes:
    """The contents of the object at `uri`."""
    return _call("reading", uri, lambda: _blob(uri).download_as_bytes(retry=_retry()))


def _transferred(what: str, uris: list[str], results: list) -> None:
    """Raises, as `_call` would, the first failure `transfer_manager` returned in place of a result."""
    for uri, result in zip(uris, results):
        if isinstance(result, Exception):
            raise (_failure(what, uri, result) or result) from result


def download_tree(uri: str, local_dir: str) -> int:
    """Copies every object under the prefix into `local_dir`, keeping relative paths; returns the count."""
    from google.cloud.storage import transfer_manager

    bucket_name, prefix = split(uri)
    bucket = _client().bucket(bucket_name)
    root = os.path.abspath(local_dir)
    pairs, uris = [], []
    for name, _ in list_objects(uri):
        destination = os.path.abspath(os.path.join(root, *name.split("/")))
        if os.path.commonpath([destination, root]) != root:  # "a/../../x" names exist in buckets
            raise RemoteStorageError(f"{join(uri, name)}: object name escapes the download directory")
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        pairs.append((bucket.blob(f"{prefix}/{name}" if prefix else name), destination))
        uris.append(join(uri, name))
    for start in range(0, len(pairs), PROGRESS_EVERY):
        chunk = pairs[start:start + PROGRESS_EVERY]
        results = transfer_manager.download_many(chunk, download_kwargs={"retry": _retry()},
                                                 worker_type=transfer_manager.THREAD, max_workers=TRANSFER_WORKERS)
        _transferred("downloading", uris[start:start + PROGRESS_EVERY], results)
        if len(pairs) > PROGRESS_EVERY:
            logger.info("gcs: %d of %d objects downloaded from %s", start + len(chunk), len(pairs), uri)
    return len(pairs)


def upload_many(files: list[tuple[str, str]], *, overwrite: bool = False) -> None:
    """Uploads (local path, URI) pairs TRANSFER_WORKERS at a time; without `overwrite`, as `upload_file`.

    Raises:
        AlreadyExists: without `overwrite`, an object was there already (the others may be uploaded).
        RemoteStorageError: an upload failed after its retries.
    """
    from google.cloud.storage import transfer_manager

    options = {"retry": _retry(), **({} if overwrite else {"if_generation_match": 0})}
    for start in range(0, len(files), PROGRESS_EVERY):
        chunk = files[start:start + PROGRESS_EVERY]
        results = transfer_manager.upload_many([(path, _blob(uri)) for path, uri in chunk], upload_kwargs=options,
                                               worker_type=transfer_manager.THREAD, max_workers=TRANSFER_WORKERS)
        _transferred("uploading", [uri for _, uri in chunk], results)
        if len(files) > PROGRESS_EVERY:
            logger.info("gcs: %d of %d objects uploaded", start + len(chunk), len(files))


def _upload(uri: str, overwrite: bool, send: Callable) -> None:
    """`send(blob, **options)` with retries; without `overwrite`, only if no object is there yet."""
    options = {"retry": _retry(), **({} if overwrite else {"if_generation_match": 0})}
    _call("uploading", uri, lambda: send(_blob(uri), **options))


def upload_file(local_path: str, uri: str, *, overwrite: bool = False) -> None:
    """Uploads one file; without `overwrite` an existing object is never replaced (AlreadyExists)."""
    _upload(uri, overwrite, lambda blob, **options: blob.upload_from_filename(local_path, **options))


def upload_bytes(data: bytes, uri: str, *, overwrite: bool = False) -> None:
    """Uploads bytes; without `overwrite` an existing object is never replaced (AlreadyExists)."""
    _upload(uri, overwrite, lambda blob, **options: blob.upload_from_string(data, **options))


def delete(uri: str) -> None:
    """Deletes one object; one that is already gone counts as deleted."""
    from google.api_core import exceptions

    def deleting():
        try:
            _blob(uri).delete(retry=_retry())
        except exceptions.NotFound:
            pass

    _call("deleting", uri, deleting)


def delete_tree(uri: str) -> int:
    """Deletes every object under the prefix; returns how many there were."""
    names = [name for name, _ in list_objects(uri)]
    for name in names:
        delete(join(uri, name))
    return len(names)


def download_file(uri: str, local_path: str) -> None:
    """Copies one object to a local file, making its directory; a missing object is an error."""
    os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
    _call("downloading", uri, lambda: _blob(uri).download_to_filename(local_path, retry=_retry()))


def list_object_times(uri: str) -> Iterator[tuple[str, float]]:
    """(path relative to `uri`, when it was last written) of every object under the prefix, sorted by path.

    Times are seconds since the epoch on the storage service's clock, so objects written from
    different machines compare on one clock.
    """
    return _described_objects(uri, lambda blob: (blob.updated or blob.time_created).timestamp())


def object_hash(uri: str) -> str | None:
    """The content hash of the one object at `uri`, or None when no object has that exact name."""
    bucket, name = split(uri)

    def lookup():
        blob = _client().bucket(bucket).get_blob(name, retry=_retry()) if name else None
        return _content_hash(blob) if blob is not None else None

    return _call("checking", uri, lookup)
