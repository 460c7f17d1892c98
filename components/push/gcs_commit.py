"""Committing a validated export as the next version under a gs:// model directory.

TF Serving and KServe list the model directory's integer children and load the highest. Cloud
Storage has no rename, so a version's prefix shows while its files upload; the order of the
uploads keeps a server from loading a half version, and a cleanup keeps a push that died from
leaving one for ever. A push writes:

    <model_dir>/.headstart-claims/<N>       the claim on number N (JSON: host, pid, time)
    <model_dir>/<N>/variables/..., assets/... first
    <model_dir>/<N>/model_card.md, .headstart-model-key, ... then the other files
    <model_dir>/<N>/saved_model.pb          last: the version exists from this moment

and nothing else under `<N>/`: the claim lives outside the integer prefixes.

1. The push deletes the files of abandoned versions (below), then claims the number one above
   the highest taken, a number being taken when it has a claim or any object under `<N>/`. The
   claim is created with `if_generation_match=0`: of two pushes that pick N, exactly one creates
   it; the other lists again and tries the next number.
2. Every file is uploaded with `if_generation_match=0` (nothing is ever overwritten), the
   variables and assets first, `saved_model.pb` last and only after a listing shows every other
   file in place. A version counts only once its `saved_model.pb` exists
   (`serving_layout.existing_versions`), for the champion lookup and `headstart serve` alike.

An abandoned version has objects under `<N>/` but no `saved_model.pb`, and nothing of it (its
claim or any of its files) was written within the grace period (`grace_seconds`, else
`HEADSTART_PUSH_GRACE_SECONDS`, else one hour). The rule looks at the newest write, not at the
claim's age, because a live push writes a file every few moments however long the whole upload
takes: only a push stalled on one file for longer than the grace period could be taken for
dead, and such a push finds its files gone before it uploads `saved_model.pb` and fails rather
than complete a half version. Write times come from the storage service; they are compared with
this machine's clock, and the default hour dwarfs any clock skew.

The claim of a cleaned-up version stays, so its number is never handed out again. A push
wrongly taken for dead that wakes up then writes only into a number nobody else will use, and
fails its final check, instead of mixing its files with another push's under the same number;
and a server or push result that once saw version N never finds other content under N.
"""

import json
import logging
import os
import socket
import time

from components.common.contract.serving_layout import SAVED_MODEL_FILE, version_number
from components.common.storage import gcs

logger = logging.getLogger(__name__)

# Beside the versions, where TF Serving does not look (it loads integer names only).
CLAIMS_DIR = ".headstart-claims"
GRACE_SECONDS_ENV = "HEADSTART_PUSH_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 3600.0
_FIRST_UPLOADED = ("variables/", "assets/")


def claim_uri(model_dir: str, version: int) -> str:
    """Where the claim on a version number lives."""
    return gcs.join(model_dir, CLAIMS_DIR, str(version))


def upload_order(local_dir: str) -> list[str]:
    """The export's files, relative and '/'-separated, in upload order.

    Variables and assets come first, `saved_model.pb` last: a server that finds
    `saved_model.pb` finds everything it refers to.
    """
    files = [os.path.relpath(os.path.join(directory, name), local_dir).replace(os.sep, "/")
             for directory, _, names in os.walk(local_dir) for name in names]

    def rank(path: str) -> tuple[int, str]:
        if path == SAVED_MODEL_FILE:
            return 2, path
        return (0 if path.startswith(_FIRST_UPLOADED) else 1), path

    return sorted(files, key=rank)


def _grace_seconds(grace_seconds: float | None) -> float:
    if grace_seconds is None:
        setting = os.environ.get(GRACE_SECONDS_ENV, str(DEFAULT_GRACE_SECONDS))
        try:
            grace_seconds = float(setting)
        except ValueError:
            raise ValueError(f"{GRACE_SECONDS_ENV} must be a number of seconds, got {setting!r}") from None
    if not grace_seconds >= 0:
        raise ValueError(f"the push grace period must be >= 0 seconds, got {grace_seconds}")
    return grace_seconds


def _scan(model_dir: str) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(files and their write times per integer prefix, write time of each claim) in one listing."""
    versions: dict[str, dict[str, float]] = {}
    claims: dict[str, float] = {}
    for name, written in gcs.list_object_times(model_dir):
        head, _, rest = name.partition("/")
        if head == CLAIMS_DIR and version_number(rest) is not None:
            claims[rest] = written
        elif version_number(head) is not None and rest:
            versions.setdefault(head, {})[rest] = written
    return versions, claims


def _taken(versions: dict[str, dict[str, float]], claims: dict[str, float]) -> set[int]:
    return {int(name) for name in (*versions, *claims)}


def _is_abandoned(files: dict[str, float], claimed_at: float | None, now: float, grace: float) -> bool:
    newest = max([*files.values(), *([claimed_at] if claimed_at is not None else [])], default=now)
    return SAVED_MODEL_FILE not in files and now - newest > grace


def remove_abandoned_versions(model_dir: str, grace_seconds: float | None = None) -> list[int]:
    """Deletes the files of every abandoned version (see the module docstring); returns their numbers.

    The claims stay (one is written for a version that had none), so no number is reused.
    """
    return _remove_abandoned(model_dir, *_scan(model_dir), _grace_seconds(grace_seconds))


def _remove_abandoned(model_dir: str, versions: dict[str, dict[str, float]], claims: dict[str, float],
                      grace: float) -> list[int]:
    removed = []
    for name, files in sorted(versions.items(), key=lambda item: int(item[0])):
        if not _is_abandoned(files, claims.get(name), time.time(), grace):
            continue
        if name not in claims:
            try:
                gcs.upload_bytes(_claim_body(reason="abandoned version cleaned up"), claim_uri(model_dir, int(name)))
            except gcs.AlreadyExists:
                pass
        version_dir = gcs.join(model_dir, name)
        # The first listing may be stale by now: look again right before deleting.
        if not _is_abandoned(dict(gcs.list_object_times(version_dir)), claims.get(name), time.time(), grace):
            continue
        count = gcs.delete_tree(version_dir)
        logger.warning("push: deleted %d objects of %s: no %s and nothing written for over %.0f s",
                       count, version_dir, SAVED_MODEL_FILE, grace)
        removed.append(int(name))
    return removed


def _claim_body(**fields) -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), **fields}).encode()


def _claim_next_version(model_dir: str, taken: set[int]) -> int:
    version = max(taken, default=0) + 1
    while True:
        try:
            gcs.upload_bytes(_claim_body(), claim_uri(model_dir, version))
            return version
        except gcs.AlreadyExists:
            logger.info("push: version %d was claimed by another push: trying the next", version)
            version = max(_taken(*_scan(model_dir)) | {version}) + 1


def _check_uploaded(version_dir: str, expected: list[str]) -> None:
    present = {name for name, _ in gcs.list_objects(version_dir)}
    if missing := [name for name in expected if name not in present]:
        raise gcs.RemoteStorageError(
            f"{version_dir}: {len(missing)} uploaded files are gone (first {missing[0]!r}): the version was "
            f"cleaned up as abandoned while this push stalled; {SAVED_MODEL_FILE} not uploaded, push again")


def commit_to_gcs(staging_dir: str, model_dir: str, *, grace_seconds: float | None = None) -> int:
    """Uploads a local export as the next free version of the gs:// model directory; returns it.

    Args:
        staging_dir: the validated export; it must hold `saved_model.pb`.
        model_dir: `gs://bucket/.../<model_name>`.
        grace_seconds: how long an incomplete version must have had nothing written before this
            push deletes it as abandoned; None reads `HEADSTART_PUSH_GRACE_SECONDS`, else one hour.

    Raises:
        ValueError: the export has no `saved_model.pb`.
        RemoteStorageError: Cloud Storage failed, or this push's files were deleted under it.
    """
    files = upload_order(staging_dir)
    if SAVED_MODEL_FILE not in files:
        raise ValueError(f"{staging_dir}: no {SAVED_MODEL_FILE} to push")
    grace = _grace_seconds(grace_seconds)
    versions, claims = _scan(model_dir)
    _remove_abandoned(model_dir, versions, claims, grace)
    # A cleaned-up version keeps (or was given) its claim, so this listing still counts it taken.
    version = _claim_next_version(model_dir, _taken(versions, claims))
    version_dir = gcs.join(model_dir, str(version))
    local = {relative: os.path.join(staging_dir, *relative.split("/")) for relative in files}
    # Each group of upload_order in parallel, the groups in order; saved_model.pb last, alone: a
    # version counts once it is there, so everything else must be there before it.
    first = [relative for relative in files[:-1] if relative.startswith(_FIRST_UPLOADED)]
    for group in (first, [relative for relative in files[:-1] if relative not in set(first)]):
        gcs.upload_many([(local[relative], gcs.join(version_dir, relative)) for relative in group])
    _check_uploaded(version_dir, files[:-1])
    gcs.upload_file(local[SAVED_MODEL_FILE], gcs.join(version_dir, SAVED_MODEL_FILE))
    logger.info("push: uploaded %s", version_dir)
    return version
