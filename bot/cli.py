"""The ``opsbot`` command: parse, call, print. Thin on purpose; the work lives elsewhere."""

from __future__ import annotations

import json
import sqlite3
import sys
from importlib import metadata
from typing import TYPE_CHECKING, Annotated

import typer

from bot import config, logs

if TYPE_CHECKING:
    from bot.diagnose.model import Trigger
    from bot.store import Store

app = typer.Typer(
    name="opsbot",
    help="Slack ChatOps for GPU inference clusters: alerts, runbook diagnosis, approved fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(
    ctx: typer.Context,
    log_level: Annotated[str | None, typer.Option(help="Override OPSBOT_LOG_LEVEL.")] = None,
) -> None:
    """Build the settings once and set up logging before any command runs."""
    try:
        settings = config.load_settings()
    except config.ConfigError as e:
        typer.echo(f"opsbot: {e}", err=True)
        raise typer.Exit(2) from e
    logs.configure(level=log_level or settings.log_level, fmt=settings.log_format)
    ctx.obj = settings


@app.command()
def version() -> None:
    """Print opsbot's version."""
    typer.echo(metadata.version("opsbot"))


tools_app = typer.Typer(help="The read tools the bot uses: list them, run one as the bot would.")
app.add_typer(tools_app, name="tools")


@tools_app.command("list")
def tools_list(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every read tool with its arguments."""
    from tools import budget, catalog

    if json_output:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "description": s.description,
                        "args": s.args.model_json_schema(),
                    }
                    for s in catalog.TOOLS
                ],
                indent=2,
            )
        )
        return
    rows = [
        [spec.name, ", ".join(spec.args.model_fields), spec.description.split(". ")[0]]
        for spec in catalog.TOOLS
    ]
    typer.echo(budget.table(["TOOL", "ARGUMENTS", "WHAT IT DOES"], rows))


@tools_app.command("run")
def tools_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tool name (see `opsbot tools list`).")],
    arguments: Annotated[
        list[str] | None, typer.Argument(help="key=value arguments, e.g. query='up'.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the whole ToolResult as JSON.")
    ] = False,
) -> None:
    """Run one tool as the bot would and show what it sees; exit 1 when the result is an error."""
    from pydantic import ValidationError

    from bot import clients
    from tools import catalog

    try:
        spec = catalog.get(name)
        parsed = dict(_key_value(item) for item in arguments or [])
        result = spec.run(clients.build_toolbox(ctx.obj), parsed)
    except (KeyError, ValueError, ValidationError) as e:
        typer.echo(f"opsbot tools run: {e}", err=True)
        raise typer.Exit(2) from e
    if json_output:
        typer.echo(result.model_dump_json(indent=2))
    else:
        cut = f"  (cut: {result.cut})" if result.cut else ""
        typer.echo(
            f"# {result.tool} [{result.status}] {result.source} on {result.cluster or '-'} "
            f"in {result.duration_ms:.0f} ms{cut}\n# {result.call}"
        )
        typer.echo(result.text)
    if result.status == "error":
        raise typer.Exit(1)


@app.command()
def diagnose(  # noqa: PLR0917 - typer maps each option to a parameter
    ctx: typer.Context,
    alert: Annotated[
        str | None, typer.Option(help="Diagnose as if this alert fired (its alertname).")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="An alert label as key=value (repeat): node=…, pod=…, model=…"),
    ] = None,
    workload: Annotated[
        str | None, typer.Option(help="Diagnose a workload, as NAMESPACE/NAME.")
    ] = None,
    question: Annotated[
        str | None, typer.Option(help="Answer a question as a chat message would be.")
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Which configured cluster (default: the default one).")
    ] = None,
    save: Annotated[
        bool, typer.Option(help="Keep the diagnosis and its proposals in the store.")
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the Diagnosis as one JSON object.")
    ] = False,
) -> None:
    """Diagnose an alert, a workload or a question with the runbook detectors (no LLM).

    Every finding is printed with its evidence; sources that could not be reached are named,
    and what they would show is reported as unknown.
    """
    from bot.diagnose import service, text

    try:
        trigger = _trigger(alert, label or [], workload, question)
    except ValueError as e:
        typer.echo(f"opsbot diagnose: {e}", err=True)
        raise typer.Exit(2) from e
    settings: config.Settings = ctx.obj
    trigger = trigger.model_copy(update={"cluster": cluster}) if cluster else trigger
    store = _open_store(settings) if save else None
    try:
        diagnosis = service.Diagnoser(settings, store=store).diagnose(trigger)
    except service.UnknownCluster as e:
        typer.echo(f"opsbot diagnose: {e}", err=True)
        raise typer.Exit(2) from e
    finally:
        if store is not None:
            store.close()
    typer.echo(diagnosis.model_dump_json(indent=2) if json_output else text.render(diagnosis))


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, as you would ask it in Slack.")],
    thread: Annotated[
        str | None,
        typer.Option(help="A conversation id: follow-ups with the same id keep the context."),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Which configured cluster (default: the default one).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the whole answer as one JSON object.")
    ] = False,
) -> None:
    """Ask the bot: the runbook detectors first, then the model checks and explains (when one is
    configured and answering; otherwise the detectors answer and the output says why)."""
    from bot.agent import Agent
    from bot.diagnose import service
    from bot.diagnose.model import Trigger

    settings: config.Settings = ctx.obj
    store = _open_store(settings)
    try:
        answer = Agent(settings, store=store).answer(
            Trigger(kind="question", question=question, cluster=cluster), thread_id=thread
        )
    except service.UnknownCluster as e:
        typer.echo(f"opsbot ask: {e}", err=True)
        raise typer.Exit(2) from e
    finally:
        if store is not None:
            store.close()
    if json_output:
        typer.echo(answer.model_dump_json(indent=2))
        return
    mode = "model" if answer.diagnosis.mode == "llm" else "runbook detectors"
    calls = f", {answer.llm_calls} model calls" if answer.llm_calls else ""
    typer.echo(answer.text)
    found = ", ".join(answer.diagnosis.codes()) or "none"
    typer.echo(f"\n[answered by the {mode}{calls}; findings: {found}]")


@app.command()
def serve(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(min=1, help="Worker threads doing the jobs.")] = 4,
) -> None:
    """Run the bot: HTTP (/alertmanager, /healthz, /readyz, and /slack/events unless Socket
    Mode), Socket Mode when SLACK_APP_TOKEN is set, and the workers. Stops on SIGTERM/SIGINT."""
    import signal
    import threading

    from bot import server
    from bot.agent import Agent
    from bot.diagnose.service import Diagnoser
    from bot.slack import alert_messages, chat, commands, diagnosis_posts
    from bot.slack import app as slack_app
    from bot.slack import client as slack_client
    from bot.store import Store
    from bot.worker import AlertHandler, DiagnoseHandler, Handler, Worker

    settings: config.Settings = ctx.obj
    log = logs.get("opsbot.serve")
    try:
        store = Store(settings.db_path)
        web = slack_client.web_client(settings)
        bolt = slack_app.build_app(settings=settings, store=store, client=web)
    except (OSError, sqlite3.Error, ValueError) as e:
        typer.echo(f"opsbot serve: {e}", err=True)
        raise typer.Exit(2) from e
    diagnoser = Diagnoser(settings, store=store)
    agent = Agent(settings, store=store, diagnoser=diagnoser)
    posts = diagnosis_posts.DiagnosisPosts(store, web, agent)
    cmds = commands.Commands(settings=settings, store=store, client=web, diagnoser=diagnoser)
    handlers: dict[str, Handler] = {
        "alert": AlertHandler(
            store,
            diagnoser,
            messages=alert_messages.AlertMessages(store, web, settings),
            posts=posts,
        ),
        slack_app.DIAGNOSE_JOB: DiagnoseHandler(posts),
        slack_app.CHAT_JOB: chat.ChatHandler(
            settings=settings, store=store, client=web, agent=agent
        ),
        slack_app.COMMAND_JOB: cmds.command,
        slack_app.SILENCE_JOB: cmds.silence_button,
        slack_app.ACK_JOB: cmds.ack_button,
    }
    socket = settings.slack_app_token is not None
    router = server.routes(
        settings=settings,
        store=store,
        slack_events=None if socket else slack_app.http_handler(bolt),
    )
    http = server.serve(settings, store, router=router)
    socket_handler = slack_app.SocketMode(bolt, settings) if socket else None
    if socket_handler is not None:
        socket_handler.start()
    stop = threading.Event()

    def work(number: int) -> None:
        try:
            Worker(store, handlers, name=f"{socket_name()}:w{number}").run(stop)
        finally:
            store.close()

    threads = [
        threading.Thread(target=work, args=(n,), name=f"opsbot-worker-{n}", daemon=True)
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("serve.started", url=http.url, socket_mode=socket, workers=workers)
    stop.wait()
    log.info("serve.stopping")
    if socket_handler is not None:
        socket_handler.stop()
    http.stop()
    for thread in threads:
        thread.join(timeout=30)
    store.close()


def socket_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _trigger(
    alert: str | None, labels: list[str], workload: str | None, question: str | None
) -> Trigger:
    from bot.diagnose.model import Trigger

    given = [
        name
        for name, v in (("--alert", alert), ("--workload", workload), ("--question", question))
        if v
    ]
    if len(given) != 1:
        raise ValueError("give exactly one of --alert NAME, --workload NS/NAME, --question TEXT")
    if labels and not alert:
        raise ValueError("--label goes with --alert")
    if alert:
        parsed = dict(_key_value(item) for item in labels)
        parsed["alertname"] = alert
        return Trigger(
            kind="alert", alertname=alert, labels=parsed, namespace=parsed.get("namespace")
        )
    if workload:
        namespace, sep, name = workload.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ValueError(f"--workload is NAMESPACE/NAME, not {workload!r}")
        return Trigger(kind="workload", namespace=namespace, workload=name)
    return Trigger(kind="question", question=question)


def _open_store(settings: config.Settings) -> Store | None:
    """The configured store, or None (with a warning) when it cannot be opened here."""
    from bot.store import Store

    try:
        return Store(settings.db_path)
    except (OSError, sqlite3.Error) as e:
        typer.echo(
            f"opsbot: not saving the diagnosis: cannot open the store at {settings.db_path} "
            f"({e}); set OPSBOT_DB_PATH or pass --no-save",
            err=True,
        )
        return None


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"arguments are key=value, not {item!r}")
    return key, value


def _register_lab() -> None:
    """The lab's commands (the one place bot/ reaches into lab/)."""
    from lab import cli as lab_cli

    app.add_typer(lab_cli.app, name="lab")
    app.command("demo")(lab_cli.demo)
    app.command("eval")(lab_cli.eval_command)


_register_lab()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
