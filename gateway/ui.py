"""The built UI (`make web`: Vite's `dist/`) as Envoy routes: Envoy answers every file itself.

The files are inlined in the config, so the UI shares the APIs' origin and the cluster
variant needs no mount. Each file is an exact-path `direct_response`: the content-hashed
`/assets/*` are cached for good, everything else (index.html, favicon) is revalidated so a
new build shows at the next load. `/` and the UI's client-side pages (`UI_PAGES`, the paths
its router knows) answer index.html; any other path keeps Envoy's 404. Without a build, `/`
and the pages answer 503 saying how to make one, so `financelake up` still starts.
"""

from __future__ import annotations

import base64
import gzip
import mimetypes
import re
import urllib.parse
from pathlib import Path

from financelake.gateway.config import Json

# The UI router's pages: `/symbols/` has only pages below it, the others are a page each
# (and may grow sub-pages).
UI_PAGES: tuple[str, ...] = (
    "/markets",
    "/symbols/",
    "/alerts",
    "/pipeline",
    "/import",
    "/models",
    "/traces/",
)
INDEX = "index.html"
ASSETS = "assets"
NOT_BUILT = "The FinanceLake UI is not built: run `make web` (or `make up`, which builds it)."
_IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in these names
_REVALIDATE = "no-cache"
# The host's mime.types may still say application/javascript; RFC 9239 says text/javascript.
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript"}
# What the first page loads from index.html: Vite's entry script, module preloads, styles.
_REFERENCED = re.compile(rf'(?:src|href)="/{ASSETS}/([^"?#]+)"'.encode())
_FIRST_LOAD_SUFFIXES = (".js", ".mjs", ".css")


def content_type(path: Path) -> str:
    """The content-type Envoy answers `path` with; text is UTF-8, as Vite writes it."""
    kind = (
        _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


def _response(status: int, data: bytes, content: str, cache: str) -> Json:
    try:
        body = {"inline_string": data.decode()}
    except UnicodeDecodeError:  # binary: base64 in the JSON config
        body = {"inline_bytes": base64.b64encode(data).decode("ascii")}
    return {
        "direct_response": {"status": status, "body": body},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": content}},
            {"header": {"key": "cache-control", "value": cache}},
        ],
    }


def _file(dist: Path, path: Path) -> Json:
    relative = path.relative_to(dist)
    cache = _IMMUTABLE if relative.parts[0] == ASSETS else _REVALIDATE
    return _response(200, path.read_bytes(), content_type(path), cache)


def _page_matches() -> list[Json]:
    # `path_separated_prefix`: `/markets` and `/markets/...`, not `/marketsx`.
    return [{"path": "/"}] + [
        {"prefix": page} if page.endswith("/") else {"path_separated_prefix": page}
        for page in UI_PAGES
    ]


def ui_routes(dist: Path) -> list[Json]:
    """The routes serving the build in `dist`: one per file, then `/` and the pages."""
    index = dist / INDEX
    if not index.is_file():
        page = _response(503, NOT_BUILT.encode(), "text/plain; charset=utf-8", _REVALIDATE)
        return [{"match": match} | page for match in _page_matches()]
    files = sorted(
        path
        for path in dist.rglob("*")
        # Dot folders hold build metadata (`.vite/manifest.json`), not what browsers load.
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(dist).parts)
    )
    routes = [
        {"match": {"path": "/" + urllib.parse.quote(path.relative_to(dist).as_posix())}}
        | _file(dist, path)
        for path in files
    ]
    page = _file(dist, index)
    return routes + [{"match": match} | page for match in _page_matches()]


def first_load_gzip_kib(dist: Path) -> float | None:
    """What a browser downloads for the first page, each file gzipped at level 9, in KiB (one
    decimal): index.html and the scripts and styles under `assets/` it references. None
    without a build."""
    index = dist / INDEX
    if not index.is_file():
        return None
    html = index.read_bytes()
    names = sorted({name.decode() for name in _REFERENCED.findall(html)})
    bodies = [html] + [
        (dist / ASSETS / name).read_bytes() for name in names if name.endswith(_FIRST_LOAD_SUFFIXES)
    ]
    return round(sum(len(gzip.compress(body, compresslevel=9)) for body in bodies) / 1024, 1)
