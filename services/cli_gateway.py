"""`financelake gateway ...`: the Envoy gateway's configuration.

`render` writes Envoy's config (JSON) for the local stack or the cluster, with the descriptor
set its REST transcoder loads beside it, and checks it with `envoy --mode validate` when the
binary is at hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from financelake.gateway.config import Target
from financelake.gateway.envoy import EnvoyConfigInvalid, EnvoyNotFound, validate
from financelake.gateway.render import render
from financelake.services.settings import Settings

gateway_app = typer.Typer(help="The Envoy gateway (grpc-web and REST).", no_args_is_help=True)
err = Console(stderr=True)


@gateway_app.command("render")
def render_command(
    ctx: typer.Context,
    target: Annotated[
        Target, typer.Option(help="local: the servers on this machine; cluster: Kubernetes.")
    ] = Target.LOCAL,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Config file to write (.json). Default: <home>/gateway/envoy-<target>.json."
        ),
    ] = None,
    descriptor_at: Annotated[
        Path | None,
        typer.Option(help="Where Envoy finds the descriptor set (cluster: the mounted path)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Run `envoy --mode validate` on it.")] = True,
) -> None:
    """Write the gateway's Envoy config and its descriptor set."""
    settings: Settings = ctx.obj
    output = output or settings.home / "gateway" / f"envoy-{target.value}.json"
    try:
        rendered = render(settings, target, output, descriptor_at)
    except (OSError, ValueError) as exc:
        err.print(f"[red]Cannot render the gateway config: {exc}[/red]")
        raise typer.Exit(1) from exc
    if check and descriptor_at is None:
        try:
            validate(rendered.config)
        except (EnvoyNotFound, EnvoyConfigInvalid) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    typer.echo(rendered.config)
