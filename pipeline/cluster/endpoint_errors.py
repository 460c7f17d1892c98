"""Cluster commands' failures to reach their endpoint, as one line a person can act on.

`submit`, `schedule` and `runs` talk to a KFP API (or Vertex AI); when it cannot be reached or
answers with an HTTP error, the command exits 2 with one line naming the endpoint and the reason,
not a traceback.
"""

import argparse
import functools
import json
import logging
import sys
from typing import Callable


def endpoint_failure(error: Exception, endpoint: str) -> str | None:
    """What went wrong between this machine and `endpoint`, in one line; None for an error of another kind.

    Covers what `kfp.Client` raises: urllib3's errors when nothing answers (refused, unresolvable,
    cut off), the TimeoutError its health check gives up with, and the generated client's
    ApiException when the endpoint answers with an HTTP error status.
    """
    import urllib3
    from kfp_server_api.exceptions import ApiException

    if isinstance(error, ApiException) and not error.status:
        # Status 0: no answer came, e.g. the TLS handshake failed; the reason says why.
        return f"cannot reach {endpoint}: {error.reason}"
    if isinstance(error, ApiException):
        try:
            message = str(json.loads(error.body or "").get("message") or "").strip()
        except (TypeError, ValueError, AttributeError):
            message = ""  # not KFP's JSON error body: the status says enough
        answer = f"HTTP {error.status} {error.reason or ''}".rstrip()
        return f"{endpoint} answered {answer}" + (f": {message.splitlines()[0][:300]}" if message else "")
    if isinstance(error, urllib3.exceptions.HTTPError):
        # MaxRetryError wraps the last try's error, which wraps the socket's: its strerror
        # ("Connection refused") says it in two words where urllib3's own text repeats the URL.
        cause = getattr(error, "reason", None) or error
        while not (isinstance(cause, OSError) and cause.strerror) and (cause.__cause__ or cause.__context__):
            cause = cause.__cause__ or cause.__context__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    elif isinstance(error, (TimeoutError, ConnectionError)):
        reason = str(error) or type(error).__name__
    else:
        try:
            from requests.exceptions import ConnectionError as RequestsConnectionError
        except ImportError:
            return None
        if not isinstance(error, RequestsConnectionError):
            return None
        reason = str(error)
    return f"cannot reach {endpoint}: {reason}"


class _NoTracebacks(logging.Filter):
    """Keeps a log record's message and drops its traceback.

    `kfp.Client` logs each failed health check with `logging.exception`; the retries are worth
    seeing, their tracebacks are not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def cluster_command(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wraps a cluster command's handler so that endpoint failures exit 2 with one line, no traceback.

    Failures are an endpoint that cannot be reached or that answers with an HTTP error. The line
    names the command, the endpoint and the reason, e.g. `headstart runs: cannot reach the KFP API
    at http://127.0.0.1:9: Connection refused`; any other error propagates as it is.
    """
    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        no_tracebacks = _NoTracebacks()
        root = logging.getLogger()
        root.addFilter(no_tracebacks)
        try:
            return handler(args)
        except Exception as error:
            endpoint = (f"the KFP API at {args.host}" if args.host
                        else f"Vertex AI in {getattr(args, 'vertex', None) or 'its project'}")
            failure = endpoint_failure(error, endpoint)
            if failure is None:
                raise
            print(f"headstart {args.command}: {failure}", file=sys.stderr)
            return 2
        finally:
            root.removeFilter(no_tracebacks)

    return wrapped
