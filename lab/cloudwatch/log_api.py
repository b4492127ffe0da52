"""The read operations on groups, streams and events: a request body in, the answer out.

DescribeLogGroups, DescribeLogStreams, FilterLogEvents, GetLogEvents and GetLogRecord, with
the parameters, defaults and pagination AWS documents (tokens are opaque offsets here).
"""

from __future__ import annotations

from typing import Any

from lab.cloudwatch import errors, insights, patterns, values
from lab.cloudwatch.logstore import LogEvent, LogGroup, LogStore

Body = dict[str, Any]
FOREVER_MS = 2**62


def group_arn(group: str, *, region: str, account: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}"


def resolve_group(store: LogStore, identifier: str | None) -> LogGroup:
    """A group named by name or ARN (``arn:aws:logs:…:log-group:NAME[:*]``)."""
    if not identifier:
        raise errors.invalid("logGroupName or logGroupIdentifier is required")
    name = identifier
    if identifier.startswith("arn:"):
        name = identifier.split(":log-group:", 1)[-1].removesuffix(":*")
    group = store.groups.get(name)
    if group is None:
        raise errors.not_found(
            f"Log group '{name}' does not exist for account ID '{store.account}'"
        )
    return group


def _page(items: list[Any], body: Body, default_limit: int) -> tuple[list[Any], Body]:
    start = int(body.get("nextToken") or 0)
    limit = int(body.get("limit") or default_limit)
    end = start + limit
    return items[start:end], ({"nextToken": str(end)} if end < len(items) else {})


def describe_log_groups(body: Body, *, store: LogStore, region: str) -> Body:
    prefix, pattern = body.get("logGroupNamePrefix"), body.get("logGroupNamePattern")
    if prefix and pattern:
        raise errors.invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive")
    groups = [
        g
        for name, g in store.groups.items()
        if (not prefix or name.startswith(prefix)) and (not pattern or pattern in name)
    ]
    page, more = _page(groups, body, 50)
    out = []
    for g in page:
        arn = group_arn(g.name, region=region, account=store.account)
        entry: Body = {"logGroupName": g.name, "creationTime": g.creation_time, "arn": f"{arn}:*"}
        if not pattern:
            entry |= {
                "metricFilterCount": 0,
                "storedBytes": g.stored_bytes,
                "logGroupClass": "STANDARD",
                "logGroupArn": arn,
            }
        out.append(entry)
    return {"logGroups": out, **more}


def describe_log_streams(body: Body, *, store: LogStore, region: str) -> Body:
    group = resolve_group(store, body.get("logGroupIdentifier") or body.get("logGroupName"))
    prefix, order = body.get("logStreamNamePrefix"), body.get("orderBy") or "LogStreamName"
    if prefix and order == "LastEventTime":
        raise errors.invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    names = [n for n in group.streams if not prefix or n.startswith(prefix)]
    if order == "LastEventTime":
        names.sort(key=lambda n: group.streams[n][-1].timestamp)
    else:
        names.sort()
    if body.get("descending"):
        names.reverse()
    page, more = _page(names, body, 50)
    arn = group_arn(group.name, region=region, account=store.account)
    streams = []
    for name in page:
        events = group.streams[name]
        streams.append(
            {
                "logStreamName": name,
                "creationTime": events[0].timestamp,
                "firstEventTimestamp": events[0].timestamp,
                "lastEventTimestamp": events[-1].timestamp,
                "lastIngestionTime": events[-1].ingestion_time,
                "uploadSequenceToken": str(len(events)),
                "arn": f"{arn}:log-stream:{name}",
                "storedBytes": 0,
            }
        )
    return {"logStreams": streams, **more}


def filter_log_events(body: Body, *, store: LogStore) -> Body:
    group = resolve_group(store, body.get("logGroupIdentifier") or body.get("logGroupName"))
    names, prefix = body.get("logStreamNames"), body.get("logStreamNamePrefix")
    if names and prefix:
        raise errors.invalid("logStreamNames and logStreamNamePrefix are mutually exclusive")
    try:
        matches = patterns.compile_pattern(body.get("filterPattern"))
    except patterns.PatternError as e:
        raise errors.invalid(str(e)) from e
    streams = [
        n
        for n in sorted(group.streams)
        if (not names or n in names) and (not prefix or n.startswith(prefix))
    ]
    start, end = _window(body)
    found = sorted(
        (
            e
            for n in streams
            for e in group.streams[n]
            if start <= e.timestamp <= end and matches(e.message)
        ),
        key=lambda e: (e.timestamp, e.seq),
    )
    page, more = _page(found, body, 10_000)
    return {
        "events": [
            {
                "logStreamName": e.stream,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": e.event_id,
            }
            for e in page
        ],
        "searchedLogStreams": [{"logStreamName": n, "searchedCompletely": True} for n in streams],
        **more,
    }


def get_log_events(body: Body, *, store: LogStore) -> Body:
    group = resolve_group(store, body.get("logGroupIdentifier") or body.get("logGroupName"))
    stream = group.streams.get(body.get("logStreamName") or "")
    if stream is None:
        raise errors.not_found("The specified log stream does not exist.")
    start, end = _window(body)
    events = [e for e in stream if start <= e.timestamp < end]
    limit = int(body.get("limit") or 10_000)
    token = body.get("nextToken") or ""
    if token.startswith("f/"):
        first = int(token[2:])
        window = events[first : first + limit]
    elif token.startswith("b/"):
        last = int(token[2:])
        first = max(0, last - limit)
        window = events[first:last]
    elif body.get("startFromHead"):
        first, window = 0, events[:limit]
    else:
        first = max(0, len(events) - limit)
        window = events[first:]
    return {
        "events": [
            {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
            for e in window
        ],
        "nextForwardToken": f"f/{first + len(window)}",
        "nextBackwardToken": f"b/{first}",
    }


def get_log_record(body: Body, *, store: LogStore) -> Body:
    event = store.by_ptr(body.get("logRecordPointer") or "")
    if event is None:
        raise errors.invalid("The specified logRecordPointer is not valid.")
    return {"logRecord": record_fields(event)}


def record_fields(event: LogEvent) -> dict[str, str]:
    """Every field of an event as GetLogRecord gives it: times as epoch milliseconds."""
    fields = insights.event_fields(event)
    fields.pop("@ptr", None)
    return {
        name: str(int(value)) if isinstance(value, values.Millis) else values.format_value(value)
        for name, value in fields.items()
    }


def _window(body: Body) -> tuple[int, int]:
    start = body.get("startTime")
    end = body.get("endTime")
    return (int(start) if start is not None else 0, int(end) if end is not None else FOREVER_MS)
