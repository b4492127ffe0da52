"""A critical alert over the lab: its message, then "diagnosing…" in the thread, updated in
place with the diagnosis (findings and codes); a job done twice posts once; the Diagnose
button's job answers in the same thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot import server
from bot.agent import Agent
from bot.config import Settings
from bot.diagnose.service import Diagnoser
from bot.slack import alert_messages, client, diagnosis_posts
from bot.store import Store
from bot.worker import AlertWorker, Done
from lab import up
from lab.scenario import loader

ROOT = Path(__file__).resolve().parents[4]
TOKEN = "diagnosis-posts-token"
CRITICAL = "#genai-critical"
CODE = "gpu-oom/kv-cache-pressure"


@dataclass
class Running:
    lab: up.Lab
    store: Store
    settings: Settings
    url: str
    worker: AlertWorker
    posts: diagnosis_posts.DiagnosisPosts


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    db = tmp_path_factory.mktemp("diagnosis-posts") / "opsbot.sqlite"
    with up.Lab(scenario) as lab, pytest.MonkeyPatch.context() as mp:
        store = Store(db)
        bot = server.serve(
            Settings(webhook_token=TOKEN, db_path=db, cluster_name=scenario.cluster.name),
            store,
            host="127.0.0.1",
            port=0,
        )
        try:
            lab.start(
                webhook_url=f"{bot.url}/alertmanager", webhook_token=TOKEN, deliver_alerts=False
            )
            for key, value in lab.env().items():
                if key.startswith("AWS_"):
                    mp.setenv(key, value)
            settings = lab.settings(webhook_token=TOKEN, db_path=db)
            web = client.web_client(settings)
            diagnoser = Diagnoser(settings, store=store)
            posts = diagnosis_posts.DiagnosisPosts(
                store, web, Agent(settings, store=store, diagnoser=diagnoser)
            )
            worker = AlertWorker(
                store,
                diagnoser,
                messages=alert_messages.AlertMessages(store, web, settings),
                posts=posts,
            )
            yield Running(lab, store, settings, bot.url, worker, posts)
        finally:
            bot.stop()
            store.close()


def deliver_critical(running: Running, group: str) -> None:
    """The scenario's alert, made critical, through the bot's webhook."""
    source = running.lab.scenario.alerts[0]
    started = datetime.now(UTC) - timedelta(minutes=2)
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {**source.labels, "severity": "critical"},
                "annotations": dict(source.annotations),
                "startsAt": started.isoformat().replace("+00:00", "Z"),
            }
        ],
    }
    answer = requests.post(
        f"{running.url}/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def drain(worker: AlertWorker) -> list[Done]:
    done: list[Done] = []
    while (one := worker.run_once()) is not None:
        done.append(one)
    return done


def slack(running: Running) -> Any:
    assert running.lab.slack is not None
    return running.lab.slack


def test_a_critical_alert_is_diagnosed_in_its_thread(running: Running) -> None:
    group = '{}:{alertname="GPUMemoryHigh", severity="critical"}'
    deliver_critical(running, group)
    done = drain(running.worker)
    assert [d.outcome for d in done] == ["diagnosed"], done
    diagnosis = done[0].diagnosis
    assert diagnosis is not None and CODE in diagnosis.codes()

    key = alert_messages.group_key(running.settings.cluster_name, group)
    row = alert_messages.get_row(running.store, key=key)
    assert row is not None and row.ts is not None
    thread = slack(running).messages(CRITICAL, thread_ts=row.ts)
    assert len(thread) == 2, thread  # the alert message and one reply
    reply = thread[1]
    first = [c for c in slack(running).calls("chat.postMessage") if c.args.get("thread_ts")]
    assert len(first) == 1 and "diagnosing" in json.dumps(first[0].args).lower()
    shown = json.dumps(reply["blocks"])
    assert CODE in shown, shown
    assert diagnosis.findings[0].summary[:40] in shown or CODE in reply["text"]
    assert reply.get("edited"), reply  # updated in place

    # The same job again (its lease ran out after the answer): no second reply, no new run.
    job = done[0].job
    calls = len(slack(running).calls())
    again = running.posts.run(
        key=job.dedupe_key,
        channel=row.channel,
        thread_ts=row.ts,
        trigger=diagnosis.trigger,
    )
    assert again.id == diagnosis.id
    assert len(slack(running).messages(CRITICAL, thread_ts=row.ts)) == 2
    assert not slack(running).calls()[calls:]  # already answered: nothing to do

    # The Diagnose button's job: another answer in the same thread.
    running.store.enqueue(diagnosis_posts.JOB_KIND, "diagnose:button-1", {"group_id": row.id})
    clicked = drain(running.worker)
    assert [d.outcome for d in clicked] == ["diagnosed"], clicked
    thread = slack(running).messages(CRITICAL, thread_ts=row.ts)
    assert len(thread) == 3 and CODE in json.dumps(thread[2]["blocks"])
