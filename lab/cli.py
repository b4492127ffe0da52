"""``opsbot lab …`` and ``opsbot demo``: validate scenarios and run the lab by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab.scenario import loader

app = typer.Typer(
    help="The local stand-in cluster: validate scenarios, start the lab.", no_args_is_help=True
)

PUBLIC_SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


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


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


def demo(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario file; default: every public scenario.")
    ] = None,
) -> None:
    """Start the lab for a scenario and show the cluster as the bot sees it."""
    import lab.demo as lab_demo

    files = [scenario] if scenario else sorted(PUBLIC_SCENARIOS.glob("*.yaml"))
    raise typer.Exit(lab_demo.run(files))
