"""The Logs Insights operations: StartQuery, GetQueryResults, StopQuery and DescribeQueries.

A query runs in full when it starts; GetQueryResults then reports it ``Complete``. With
``polls_until_complete=N`` the first N GetQueryResults calls report ``Running`` (no rows),
so a client's polling loop and StopQuery can be exercised.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lab.cloudwatch import errors, insights, log_api
from lab.cloudwatch.logstore import LogStore

Body = dict[str, Any]
MAX_LIMIT = 100_000


@dataclass
class QueryRun:
    """One started query, kept for GetQueryResults and for tests to assert on."""

    query_id: str
    query_string: str
    log_groups: list[str]
    start_time: int
    """Epoch seconds, as StartQuery gave it."""
    end_time: int
    limit: int | None
    result: insights.Result
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    polls_left: int = 0
    status: str = "Running"


class QueryRegistry:
    """The queries started on one server; thread-safe."""

    def __init__(self, store: LogStore, *, polls_until_complete: int = 0) -> None:
        self.store = store
        self.polls_until_complete = polls_until_complete
        self._runs: dict[str, QueryRun] = {}
        self._lock = threading.Lock()

    def runs(self) -> list[QueryRun]:
        with self._lock:
            return list(self._runs.values())

    def start_query(self, body: Body) -> Body:
        language = body.get("queryLanguage") or "CWLI"
        if language != "CWLI":
            raise errors.invalid(f"the lab answers Logs Insights QL (CWLI) only, not {language}")
        groups = self._groups(body)
        start, end = body.get("startTime"), body.get("endTime")
        if not isinstance(start, int) or not isinstance(end, int):
            raise errors.invalid("startTime and endTime are required, in epoch seconds")
        if end < start:
            raise errors.invalid("End time should not be before the start time")
        limit = body.get("limit")
        if limit is not None and not (isinstance(limit, int) and 1 <= limit <= MAX_LIMIT):
            raise errors.invalid(f"limit must be between 1 and {MAX_LIMIT}")
        text = body.get("queryString") or ""
        try:
            parsed = insights.check(text)
        except insights.MalformedQueryError as e:
            location = {"startCharOffset": e.start, "endCharOffset": e.end}
            raise errors.ApiError(
                "MalformedQueryException",
                e.message,
                queryCompileError={"location": location, "message": e.message},
            ) from e
        # the range is inclusive at both ends: the whole end second counts
        events = self.store.query_events(groups, start * 1000, (end + 1) * 1000)
        result = insights.run(parsed, events, limit=limit, log_groups=len(groups))
        run = QueryRun(
            query_id=str(uuid.uuid4()),
            query_string=text,
            log_groups=groups,
            start_time=start,
            end_time=end,
            limit=limit,
            result=result,
            polls_left=self.polls_until_complete,
            status="Running" if self.polls_until_complete else "Complete",
        )
        with self._lock:
            self._runs[run.query_id] = run
        return {"queryId": run.query_id}

    def _groups(self, body: Body) -> list[str]:
        given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if body.get(k)]
        if len(given) != 1:
            raise errors.invalid(
                "exactly one of logGroupName, logGroupNames or logGroupIdentifiers is required"
            )
        names = body["logGroupName"] if given == ["logGroupName"] else body[given[0]]
        identifiers = [names] if isinstance(names, str) else list(names)
        return [log_api.resolve_group(self.store, i).name for i in identifiers]

    def get_query_results(self, body: Body) -> Body:
        run = self._run(body)
        with self._lock:
            if run.status == "Running" and run.polls_left > 0:
                run.polls_left -= 1
                return {"queryLanguage": "CWLI", "results": [], "status": "Running"}
            if run.status == "Running":
                run.status = "Complete"
            status = run.status
        if status == "Cancelled":
            return {"queryLanguage": "CWLI", "results": [], "status": status}
        return {
            "queryLanguage": "CWLI",
            "results": run.result.rows,
            "statistics": run.result.statistics.as_aws(),
            "status": status,
        }

    def stop_query(self, body: Body) -> Body:
        run = self._run(body)
        with self._lock:
            stopped = run.status == "Running"
            if stopped:
                run.status = "Cancelled"
        return {"success": stopped}

    def describe_queries(self, body: Body) -> Body:
        group, status = body.get("logGroupName"), body.get("status")
        runs = [
            r
            for r in reversed(self.runs())
            if (not group or group in r.log_groups) and (not status or r.status == status)
        ]
        return {
            "queries": [
                {
                    "queryLanguage": "CWLI",
                    "queryId": r.query_id,
                    "queryString": r.query_string,
                    "status": r.status,
                    "createTime": r.created_ms,
                    "logGroupName": r.log_groups[0],
                }
                for r in runs[: int(body.get("maxResults") or 1000)]
            ]
        }

    def _run(self, body: Body) -> QueryRun:
        with self._lock:
            run = self._runs.get(body.get("queryId") or "")
        if run is None:
            raise errors.not_found("The specified query does not exist.")
        return run
