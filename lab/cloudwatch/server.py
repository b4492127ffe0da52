"""The CloudWatch Logs API over HTTP, as boto3's ``logs`` client speaks it (AWS JSON 1.1).

Every call is ``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>`` and a JSON body;
answers are JSON with content type ``application/x-amz-json-1.1``, errors a 400 with
``__type``. Point a client at it with ``endpoint_url=server.url`` or the environment variable
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``. Signatures are not checked; the region for ARNs is read
from the request's credential scope.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lab.cloudwatch import errors, log_api, query_api
from lab.cloudwatch.logstore import DEFAULT_ACCOUNT, DEFAULT_REGION, LogStore
from lab.httpserver import LabServer, Request, Response
from lab.scenario.models import Scenario

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/logs/")


class CloudWatchLogs:
    """The fake: a ``LabServer`` answering the Logs API from a ``LogStore``."""

    def __init__(
        self,
        store: LogStore,
        *,
        region: str = DEFAULT_REGION,
        polls_until_complete: int = 0,
    ) -> None:
        self.store = store
        self.region = region
        self.queries = query_api.QueryRegistry(store, polls_until_complete=polls_until_complete)
        self.server = LabServer(self._handle, name="cloudwatch-logs")
        self._operations: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "StartQuery": lambda body, _: self.queries.start_query(body),
            "GetQueryResults": lambda body, _: self.queries.get_query_results(body),
            "StopQuery": lambda body, _: self.queries.stop_query(body),
            "DescribeQueries": lambda body, _: self.queries.describe_queries(body),
            "DescribeLogGroups": lambda body, region: log_api.describe_log_groups(
                body, store=store, region=region
            ),
            "DescribeLogStreams": lambda body, region: log_api.describe_log_streams(
                body, store=store, region=region
            ),
            "FilterLogEvents": lambda body, _: log_api.filter_log_events(body, store=store),
            "GetLogEvents": lambda body, _: log_api.get_log_events(body, store=store),
            "GetLogRecord": lambda body, _: log_api.get_log_record(body, store=store),
        }

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        now: datetime | None = None,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        polls_until_complete: int = 0,
    ) -> CloudWatchLogs:
        store = LogStore.from_scenario(scenario, now=now, account=account)
        return cls(store, region=region, polls_until_complete=polls_until_complete)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log_groups(self) -> list[str]:
        """The group names, for ``OPSBOT_LOG_GROUPS``."""
        return list(self.store.groups)

    def start(self) -> CloudWatchLogs:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> CloudWatchLogs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- assertions ------------------------------------------------------------------------
    def operations(self) -> list[str]:
        """The operation of every request so far, in order."""
        return [
            r.header("x-amz-target").removeprefix(TARGET_PREFIX) for r in self.server.calls("POST")
        ]

    def query_strings(self) -> list[str]:
        """Every query started so far, in order."""
        return [r.query_string for r in self.queries.runs()]

    # --- HTTP ------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        target = request.header("x-amz-target")
        operation = self._operations.get(target.removeprefix(TARGET_PREFIX))
        if request.method != "POST" or not target.startswith(TARGET_PREFIX) or operation is None:
            return _error(
                errors.ApiError("UnknownOperationException", f"unknown target {target!r}")
            )
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _error(errors.ApiError("SerializationException", "the body is not JSON"))
        if not isinstance(body, dict):
            return _error(errors.ApiError("SerializationException", "the body is not an object"))
        scope = _SCOPE.search(request.header("authorization"))
        try:
            answer = operation(body, scope.group(1) if scope else self.region)
        except errors.ApiError as e:
            return _error(e)
        return _json(200, answer)


def _json(status: int, data: dict[str, Any]) -> Response:
    return Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _error(error: errors.ApiError) -> Response:
    return _json(error.status, error.body())


def start_cloudwatch(
    scenario: Scenario, *, now: datetime | None = None, polls_until_complete: int = 0
) -> LabServer:
    """Serve ``scenario``'s logs on a free port; ``stop()`` the returned server when done.

    For the fake itself (``query_strings()``, the store), build a ``CloudWatchLogs``.
    """
    fake = CloudWatchLogs.from_scenario(
        scenario, now=now, polls_until_complete=polls_until_complete
    )
    return fake.start().server
