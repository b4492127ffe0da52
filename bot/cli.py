"""The ``opsbot`` command: parse, call, print. Thin on purpose; the work lives elsewhere."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Annotated

import typer

from bot import config, logs

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


_register_lab()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
