"""``opsbot lab …`` and ``opsbot demo``: validate scenarios and run the lab by hand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lab.scenario import loader

if TYPE_CHECKING:  # the eval imports the bot: only when eval runs (the CLI starts fast)
    from lab import eval as lab_eval

app = typer.Typer(
    help="The local stand-in cluster: validate scenarios, start the lab.", no_args_is_help=True
)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files (or folders of them).")],
) -> None:
    """Check scenario files against the format; exit 0 only when every one is valid."""
    files = _expand(paths)
    if not files:
        typer.echo("no scenario files given", err=True)
        raise typer.Exit(2)
    bad = 0
    for path in files:
        try:
            scenario = loader.load_file(path)
        except loader.ScenarioError as e:
            bad += 1
            typer.echo(str(e), err=True)
        else:
            typer.echo(f"ok  {path}  ({scenario.name})")
    typer.echo(f"{len(files) - bad} valid, {bad} invalid")
    if bad:
        raise typer.Exit(1)


@app.command()
def up(
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    env_file: Annotated[
        Path | None, typer.Option(help="Also write the export lines here once ready.")
    ] = None,
    llm_script: Annotated[
        bool, typer.Option("--llm-script", help="Serve the scenario's llm_script as a model.")
    ] = False,
    webhook_url: Annotated[
        str, typer.Option(help="Where Alertmanager sends alerts (the bot's webhook).")
    ] = "http://127.0.0.1:8080/alertmanager",
    webhook_token: Annotated[
        str | None, typer.Option(help="Bearer token Alertmanager sends to the webhook.")
    ] = None,
) -> None:
    """Start the whole lab for SCENARIO, print `export` lines, run until interrupted."""
    import signal
    import threading

    from lab import up as lab_up

    try:
        loaded = loader.load_file(scenario)
    except loader.ScenarioError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with lab_up.Lab(loaded) as lab:
        try:
            lab.start(webhook_url=webhook_url, webhook_token=webhook_token, llm_script=llm_script)
            for line in lab.export_lines():
                typer.echo(line)
            if env_file is not None:
                lab.write_env_file(env_file)
            typer.echo(f"# lab ready in {lab.ready_seconds:.2f}s; Ctrl-C stops it", err=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("# stopping the lab", err=True)


@app.command()
def generate(
    nodes: Annotated[int, typer.Option(min=1, help="GPU nodes in the fleet.")],
    gpus_per_node: Annotated[
        int, typer.Option(help="GPUs per node (picks the instance type).")
    ] = 8,
    hours: Annotated[int, typer.Option(min=1, help="Hours of metric history.")] = 2,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print a valid scenario of a healthy fleet of that size (for benchmarks)."""
    import yaml

    from lab import generate as lab_generate

    try:
        data = lab_generate.fleet(nodes=nodes, gpus_per_node=gpus_per_node, hours=hours)
    except ValueError as e:
        typer.echo(f"opsbot lab generate: {e}", err=True)
        raise typer.Exit(2) from e
    text = yaml.safe_dump(data, sort_keys=False, width=1000)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out} ({len(text) / 1e6:.1f} MB)", err=True)


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


def demo(
    scenarios: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario files; default: scenarios/daily-cost-idle-gpus.yaml."),
    ] = None,
) -> None:
    """Bring the lab up for a scenario and show what the bot sees through its read tools."""
    import lab.demo as lab_demo

    raise typer.Exit(lab_demo.run(scenarios or [lab_demo.DEFAULT_SCENARIO]))


def eval_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Scenario files (or folders of them).")],
    *,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the table.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Approve and apply proposed fixes (not available yet).")
    ] = False,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            metavar="scripted",
            help="Answer with the agent on the lab's scripted model (the scenario's llm_script).",
        ),
    ] = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url",
            metavar="URL",
            help="Answer with the agent on this OpenAI-compatible server, e.g. "
            "http://vllm:8000/v1 (model: OPSBOT_LLM_MODEL).",
        ),
    ] = None,
) -> None:
    """Run the bot against each scenario and score it; exit 0 only when every one passed."""
    import json

    from lab import eval as lab_eval

    if apply:
        typer.echo(
            "opsbot eval: --apply not available yet; without it eval only proposes fixes",
            err=True,
        )
        raise typer.Exit(2)
    model = _eval_llm(llm, llm_url)
    files = _expand(paths)
    if not files:
        typer.echo("opsbot eval: no scenario files given", err=True)
        raise typer.Exit(2)
    _quiet_logs(ctx)
    if json_output:
        entries = lab_eval.run(files, llm=model)
        typer.echo(json.dumps(lab_eval.report(entries), indent=2))
    else:
        typer.echo(lab_eval.HEADER)
        entries = lab_eval.run(files, on_entry=lambda e: typer.echo(lab_eval.row(e)), llm=model)
        typer.echo(lab_eval.footer(entries))
    raise typer.Exit(0 if all(e.passed for e in entries) else 1)


def _eval_llm(llm: str | None, llm_url: str | None) -> lab_eval.Llm | None:
    """The model eval's agent path uses, or None for the deterministic path; exit 2 on misuse."""
    from lab import eval as lab_eval

    problem = None
    if llm is not None and llm_url is not None:
        problem = "--llm and --llm-url exclude each other"
    elif llm is not None and llm != "scripted":
        problem = f"--llm takes 'scripted' (the scenario's llm_script), not {llm!r}"
    elif llm_url is not None and not llm_url.startswith(("http://", "https://")):
        problem = f"--llm-url must be an http(s) URL, not {llm_url!r}"
    if problem:
        typer.echo(f"opsbot eval: {problem}", err=True)
        raise typer.Exit(2)
    if llm_url is not None:
        return lab_eval.Llm(url=llm_url)
    return lab_eval.Llm() if llm is not None else None


def _quiet_logs(ctx: typer.Context) -> None:
    """Eval's output is its table or JSON: the bot's INFO logs (one per alert, per boto3 client)
    would bury it, so they go quiet unless a level was asked for (--log-level, OPSBOT_LOG_LEVEL)."""
    from bot import logs
    from bot.config import Settings

    settings = ctx.obj
    if not isinstance(settings, Settings):
        return
    asked = ctx.parent is not None and ctx.parent.params.get("log_level") is not None
    if not asked and "log_level" not in settings.model_fields_set:
        logs.configure(level="WARNING", fmt=settings.log_format)
