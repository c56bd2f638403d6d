"""The built UI through a real Envoy: every file answered by Envoy itself at `/`, beside the APIs.

A small build is written in a temp folder as Vite lays one out (index.html, content-hashed
assets, a binary top-level file); one Envoy (module-scoped) serves it in front of a real
MarketDataService over an empty lake, so a REST call answers too. Another Envoy, without a
build, says how to make one.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from financelake.gateway.config import TRACE_ID_HEADER, Target
from financelake.gateway.envoy import validate
from financelake.gateway.render import render
from financelake.gateway.ui import NOT_BUILT, UI_PAGES
from financelake.services.marketdata.server import build_server
from financelake.services.settings import Settings
from financelake.stream.lake import ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.gateway import OPENAPI, Gateway, acall, gateway_settings, running_envoy
from tests.fixtures.grpc import running_server

pytestmark = pytest.mark.integration

INDEX = b"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/png" href="/favicon.png" />
    <title>FinanceLake \xe2\x80\x94 markets</title>
    <script type="module" crossorigin src="/assets/app-1a2b3c.js"></script>
    <link rel="stylesheet" crossorigin href="/assets/app-1a2b3c.css">
  </head>
  <body><div id="root"></div></body>
</html>
"""
SCRIPT = b'const symbols = ["AAPL", "MSFT"];\n' * 200 + "export const é = 1;\n".encode()
STYLE = b"body { margin: 0; font-family: system-ui, sans-serif; }\n" * 100
ICON = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80" + bytes(range(256))
TEXT_HTML = "text/html; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
# path -> (body, content-type, cache-control)
FILES: dict[str, tuple[bytes, str, str]] = {
    "/index.html": (INDEX, TEXT_HTML, "no-cache"),
    "/assets/app-1a2b3c.js": (SCRIPT, "text/javascript; charset=utf-8", IMMUTABLE),
    "/assets/app-1a2b3c.css": (STYLE, "text/css; charset=utf-8", IMMUTABLE),
    "/favicon.png": (ICON, "image/png", "no-cache"),
}
GZIP = {"accept-encoding": "gzip"}


def write_dist(folder: Path) -> Path:
    for path, (body, _, _) in FILES.items():
        target = folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return folder


def _settings(home: Path, ui_path: Path | None = None, marketdata_port: int = 0) -> Settings:
    return gateway_settings(home, ui_path=ui_path, marketdata_port=marketdata_port)


@pytest.mark.parametrize("target", list(Target))
def test_rendered_config_with_the_ui_passes_envoy_validate(tmp_path: Path, target: Target) -> None:
    settings = _settings(tmp_path / "home", write_dist(tmp_path / "dist"))
    rendered = render(settings, target, tmp_path / f"envoy-{target}.json")
    validate(rendered.config)


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    folder = tmp_path_factory.mktemp("gateway-ui")
    dist = write_dist(folder / "dist")
    lake_settings = _settings(folder / "home")
    await asyncio.to_thread(lambda: ensure_tables(open_catalog(lake_settings)))
    server_settings = lake_settings.model_copy(
        update={"servers": lake_settings.servers.model_copy(update={"marketdata_port": 0})}
    )
    async with running_server(build_server, server_settings) as marketdata:
        settings = _settings(folder / "home", dist, marketdata_port=marketdata.port)
        async with running_envoy(settings, folder) as gateway:
            yield gateway


@pytest.mark.parametrize("path", ["/", "/symbols/AAPL", "/markets", "/alerts/latest"])
async def test_the_root_and_the_pages_answer_index_html(gateway: Gateway, path: str) -> None:
    reply = await acall(f"{gateway.url}{path}")

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == TEXT_HTML
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.body == INDEX


@pytest.mark.parametrize("path", list(FILES))
async def test_each_file_answers_its_bytes_type_and_cache(gateway: Gateway, path: str) -> None:
    body, content_type, cache = FILES[path]

    reply = await acall(f"{gateway.url}{path}")

    assert reply.status == 200, reply.body
    assert "content-encoding" not in reply.headers  # urllib asks for identity
    assert reply.headers["content-type"] == content_type
    assert reply.headers["cache-control"] == cache
    assert reply.body == body


@pytest.mark.parametrize("path", ["/", "/assets/app-1a2b3c.js", "/assets/app-1a2b3c.css"])
async def test_text_is_gzipped_when_the_client_accepts_it(gateway: Gateway, path: str) -> None:
    body = INDEX if path == "/" else FILES[path][0]

    reply = await acall(f"{gateway.url}{path}", headers=GZIP)

    assert reply.status == 200, reply.body
    assert reply.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in reply.headers["vary"].lower()
    assert len(reply.body) < len(body)
    assert gzip.decompress(reply.body) == body


async def test_a_binary_file_is_not_gzipped(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/favicon.png", headers=GZIP)

    assert "content-encoding" not in reply.headers
    assert reply.body == ICON


@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/assets/gone-000000.js", "/marketsx"])
async def test_unknown_paths_stay_404_not_index_html(gateway: Gateway, path: str) -> None:
    reply = await acall(f"{gateway.url}{path}")

    assert reply.status == 404
    assert reply.body != INDEX


async def test_rest_still_answers_json_never_gzipped(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/v1/symbols", headers=GZIP)

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert "content-encoding" not in reply.headers  # server streams must flow line by line
    assert reply.json()["symbols"] == []


async def test_the_openapi_document_is_still_served(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/openapi.json", headers=GZIP)

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert "content-encoding" not in reply.headers
    assert reply.json() == json.loads(OPENAPI.read_text())


async def test_without_a_build_the_pages_say_how_to_make_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", tmp_path / "dist")  # never written
    async with running_envoy(settings, tmp_path) as gateway:
        pages = [await acall(f"{gateway.url}{path}") for path in ("/", *UI_PAGES)]
        asset = await acall(f"{gateway.url}/assets/app-1a2b3c.js")

    for reply in pages:
        assert reply.status == 503
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"
        assert reply.body.decode() == NOT_BUILT
    assert asset.status == 404


async def test_the_ui_config_says_tracing_is_off(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/ui-config.json")

    assert reply.status == 200, reply.body
    assert reply.json() == {"trace_url": None}
    assert TRACE_ID_HEADER not in reply.headers
