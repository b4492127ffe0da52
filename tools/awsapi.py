"""The boto3 plumbing every AWS tool shares (``tools.aws`` and ``tools.cloudwatch``).

A Session per cluster, kept by the Toolbox, and a client per request whose timeouts are the time
the call has left, so no request outlives its deadline; no hidden retries (``base.run`` owns
retrying); and the one place botocore's exceptions become the tool error tree. Endpoints come
from boto3's own settings (``AWS_ENDPOINT_URL_<SERVICE>``); nothing here reads the environment.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from tools import base
from tools.toolbox import ClusterConfig, Toolbox

CONNECT_TIMEOUT = 3.0
"""Seconds to wait for a TCP connection, at most (reads get all the time left)."""
_LABELS = {"logs": "CloudWatch Logs", "ecr": "ECR", "ec2": "EC2"}
_RETRYABLE = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
        "LimitExceededException", "InternalFailure", "InternalError", "InternalServerError",
        "InternalServerException", "ServiceUnavailable", "ServiceUnavailableException",
        "ServerException", "Unavailable",
    }
)  # fmt: skip
"""Throttling and server faults: ServerError, which ``base.run`` retries with backoff."""
_REFUSED_HERE = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.NoRegionError,
    botocore.exceptions.ParamValidationError,
)
_TIMEOUTS = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)


class Clients:
    """One boto3 Session for a cluster's account (credentials resolved once, shared)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._lock = threading.Lock()  # a Session is not thread-safe; its clients are

    def make(self, service: str, *, timeout: float, region: str | None = None) -> Any:
        """A client whose requests give up after ``timeout`` seconds, tried once."""
        config = botocore.config.Config(
            region_name=region or self.region,
            connect_timeout=min(timeout, CONNECT_TIMEOUT),
            read_timeout=timeout,
            # max_attempts counts retries after the first (1 would mean two tries).
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        with self._lock:
            return self._session.client(service, config=config)


def clients(box: Toolbox, config: ClusterConfig) -> Clients:
    made: Clients = box.client("aws", config, lambda c: Clients(c.aws_region))
    return made


def request(
    made: Clients,
    service: str,
    operation: str,
    *,
    deadline: float,
    source: str,
    region: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One AWS API call that ends by ``deadline`` (time.monotonic), errors mapped to the tree."""
    remaining = deadline - time.monotonic()
    label = _LABELS.get(service, service)
    if remaining <= 0.01:
        raise base.Timeout(source, f"no time left to call {label} {operation}")
    try:
        client = made.make(service, timeout=remaining, region=region)
    except (botocore.exceptions.BotoCoreError, ValueError) as e:  # e.g. a bad endpoint URL
        raise base.Rejected(source, f"cannot make a {label} client: {e}") from e
    try:
        answer: dict[str, Any] = getattr(client, operation)(**params)
        return answer
    except (
        botocore.exceptions.ClientError,
        botocore.exceptions.BotoCoreError,
        botocore.parsers.ResponseParserError,
    ) as e:
        endpoint = str(client.meta.endpoint_url)
        raise sdk_error(e, source=source, label=label, endpoint=endpoint, timeout=remaining) from e
    finally:
        client.close()


def sdk_error(
    e: Exception, *, source: str, label: str, endpoint: str, timeout: float
) -> base.ToolError:
    """botocore's exception as the tool error tree: the one mapping for every AWS call."""
    where = f"{label} at {endpoint}"
    if isinstance(e, botocore.exceptions.ClientError):
        return _client_error(e, source=source, where=where)
    if isinstance(e, _TIMEOUTS):
        return base.Timeout(source, f"{where}: no answer within {timeout:.1f}s")
    if isinstance(e, _REFUSED_HERE):
        return base.Rejected(source, f"{label}: {e}")
    if isinstance(e, botocore.parsers.ResponseParserError):
        return base.ServerError(source, f"{where} answered with no AWS response: {str(e)[:300]}")
    return base.Unavailable(source, f"cannot reach {where}: {e}")


def _client_error(e: Any, *, source: str, where: str) -> base.ToolError:
    response: dict[str, Any] = e.response
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    said = f"{code}: {message}" if message else code
    if code.isdigit() or not code:  # no AWS error body: only the HTTP status
        said = f"HTTP {status}" + (f": {message}" if message else "")
    at = (response.get("queryCompileError") or {}).get("location") or {}
    if at:
        said += f" (query characters {at.get('startCharOffset')}-{at.get('endCharOffset')})"
    if code in _RETRYABLE or status >= 500:
        return base.ServerError(source, f"{where} answered {said}")
    if code.endswith(("NotFoundException", ".NotFound")) or code == "NotFound":
        return base.NotFound(source, said)
    return base.Rejected(source, f"{where} refused the request: {said}")
