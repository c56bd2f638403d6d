"""Write a gateway config (the built UI inlined) and the descriptor set it loads, side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from financelake.gateway.config import Target, build_config
from financelake.gateway.descriptor import write_gateway_descriptor_set
from financelake.gateway.envoy import write_config
from financelake.gateway.ui import ui_routes
from financelake.services.settings import Settings

DESCRIPTOR_NAME = "financelake-gateway.binpb"


@dataclass(frozen=True)
class RenderedGateway:
    """The files `render` wrote."""

    config: Path
    descriptor: Path


def render(
    settings: Settings, target: Target, output: Path, descriptor_at: Path | None = None
) -> RenderedGateway:
    """Write the `target` config to `output` (a .json file) and its descriptor set beside it.

    `descriptor_at` is where Envoy will find that set when it does not run on this machine
    (the cluster mounts it); by default the written file's absolute path.
    """
    descriptor = output.with_name(DESCRIPTOR_NAME)
    write_gateway_descriptor_set(settings.gateway.descriptor_path, descriptor)
    openapi = settings.gateway.openapi_path.read_text()
    ui = ui_routes(settings.gateway.ui_path)
    config = build_config(settings, target, descriptor_at or descriptor.resolve(), openapi, ui)
    write_config(config, output)
    return RenderedGateway(output, descriptor)
