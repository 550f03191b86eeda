"""``muss-builder doctor``: check a machine (or cluster) and a pipeline config before a build."""

from __future__ import annotations

import json

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muss_builder.config import load_pipeline
from muss_builder.doctor import Check, run_doctor

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def doctor(
    config: str = typer.Option(
        "default", "--config", "-c", help="pipeline YAML path or name in pipelines/"
    ),
    out: str | None = typer.Option(
        None, "--out", help="output folder or remote url (s3://...) to test for writing"
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="connect to this Ray cluster and check its resources"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the checks as JSON"),
) -> None:
    """Check, without a build: ffmpeg and its encoders, Ray and the stages' resources, every
    configured model (present locally, readable, size, device, licence) and the output
    store. Exit 1 when anything is missing, with what to do."""
    try:
        cfg = load_pipeline(config)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # pydantic's errors are ValueErrors
        typer.echo(f"bad --config {config}: " + "; ".join(str(exc).splitlines()), err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    checks = run_doctor(cfg, out=out, ray_address=ray_address)
    failed = [c for c in checks if not c.ok]
    if as_json:
        document = {"config": config, "ok": not failed, "checks": [c.to_dict() for c in checks]}
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_table(config, checks, failed)
    raise typer.Exit(EXIT_PROBLEMS if failed else EXIT_OK)


def _print_table(config: str, checks: list[Check], failed: list[Check]) -> None:
    console = Console(soft_wrap=False)
    table = Table(title=f"muss-builder doctor: {escape(config)}", show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("what to do", overflow="fold")
    for c in checks:
        mark = "[green]ok[/]" if c.ok else "[bold red]MISSING[/]"
        table.add_row(mark, escape(c.name), escape(c.detail), escape(c.fix))
    console.print(table)
    if failed:
        console.print(f"[bold red]{len(failed)} problem(s)[/]: fix them before a build")
    else:
        console.print("[green]all checks passed[/]")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
