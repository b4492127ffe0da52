"""Benchmark Slack ack latency: 200 concurrent signed events to POST /slack/events.

The bot's HTTP server and bolt app run in-process against the lab's fake Slack (for auth.test)
and a fresh store; no workers run, so only verification, the job write and the ack are timed
(what Slack's 3-second deadline measures). Each request is a distinct ``app_mention``, sent by
the lab's ``SlackSender`` from ``--concurrency`` threads at once; latency is the client's time to
the answer. Goal: p99 < 100 ms.

    .venv/bin/python bench/slack_ack.py [--events 200] [--concurrency 200] [--out bench/results]

Writes ``slack_ack.json`` (every sample) and ``slack_ack.md`` (the table) and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import logs, server  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.slack import app as slack_app  # noqa: E402
from bot.store import Store  # noqa: E402
from lab import up  # noqa: E402
from lab.slack.sender import SlackSender  # noqa: E402
from lab.slack.server import SlackServer  # noqa: E402

GOAL_P99_MS = 100.0


def _rank(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def run(events: int, concurrency: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, SlackServer() as slack:
        settings = Settings(
            db_path=Path(tmp) / "opsbot.sqlite",
            slack_api_url=slack.api_url,
            slack_bot_token=slack.token,
            slack_signing_secret=up.SLACK_SIGNING_SECRET,
            llm_base_url=None,
        )
        store = Store(settings.db_path)
        bolt = slack_app.build_app(settings=settings, store=store)
        router = server.routes(
            settings=settings, store=store, slack_events=slack_app.http_handler(bolt)
        )
        http = server.serve(settings, store, host="127.0.0.1", port=0, router=router)
        sender = SlackSender(f"{http.url}/slack/events", up.SLACK_SIGNING_SECRET)
        sender.app_mention("warm-up", user="alice")  # bolt's first auth.test is not timed
        lock = threading.Lock()
        envelopes = []
        for n in range(events):
            with lock:
                event = sender.message_event(
                    f"<@U0OPSBOT01> question {n}",
                    user="alice",
                    channel="#genai-alerts",
                    kind="app_mention",
                )
            envelopes.append(sender.envelope(event))
        start = threading.Barrier(min(concurrency, events))

        def one(envelope: dict[str, object]) -> tuple[int, float]:
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=10)
            began = time.monotonic()
            try:
                delivery = sender.send_event(envelope)
            except OSError:  # refused or reset: the listen backlog overflowed
                return 0, (time.monotonic() - began) * 1000
            return delivery.status, delivery.elapsed * 1000

        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(one, envelopes))
            jobs = store.count_jobs()
        finally:
            http.stop()
            store.close()
    latencies = [ms for status, ms in results if status == 200] or [0.0]
    statuses = sorted({s for s, _ in results})
    return {
        "at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "events": events,
        "concurrency": concurrency,
        "statuses": statuses,
        "failed": sum(1 for status, _ in results if status != 200),
        "jobs_written": jobs - 1,
        "p50_ms": round(_rank(latencies, 0.50), 1),
        "p99_ms": round(_rank(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "goal_p99_ms": GOAL_P99_MS,
        "samples_ms": [round(ms, 2) for ms in latencies],
    }


def table(result: dict[str, object]) -> str:
    met = "yes" if float(str(result["p99_ms"])) < GOAL_P99_MS else "no"
    return "\n".join(
        [
            "| events | concurrency | failed | jobs | p50 ms | p99 ms | max ms | goal met |",
            "|---|---|---|---|---|---|---|---|",
            f"| {result['events']} | {result['concurrency']} | {result['failed']} | "
            f"{result['jobs_written']} | {result['p50_ms']} | {result['p99_ms']} | "
            f"{result['max_ms']} | {met} |",
        ]
    )


def main() -> None:
    logs.configure(level="WARNING")  # as in production: no per-request log lines in the timing
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = run(args.events, args.concurrency)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "slack_ack.json").write_text(json.dumps(result, indent=2) + "\n")
    text = f"# Slack ack latency\n\n{table(result)}\n"
    (args.out / "slack_ack.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
