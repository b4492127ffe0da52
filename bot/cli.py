"""The ``opsbot`` command: parse, call, print. Thin on purpose; the work lives elsewhere."""

from __future__ import annotations

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


def _register_lab() -> None:
    """The lab's commands (the one place bot/ reaches into lab/)."""
    from lab import cli as lab_cli

    app.add_typer(lab_cli.app, name="lab")
    app.command("demo")(lab_cli.demo)


_register_lab()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
