"""The first page's gzipped size (`gateway.ui.first_load_gzip_kib`), as the gateway bench reports
it: index.html and the scripts and styles it references, nothing else of the build."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from financelake.gateway.ui import first_load_gzip_kib

pytestmark = pytest.mark.unit

INDEX = b"""<!doctype html>
<html>
  <head>
    <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
    <script type="module" crossorigin src="/assets/index-Bx1.js"></script>
    <link rel="modulepreload" crossorigin href="/assets/vendor-Cc2.js">
    <link rel="stylesheet" crossorigin href="/assets/index-Dd3.css">
  </head>
  <body><div id="root"></div></body>
</html>
"""
NOISE = random.Random(7)


def _kib(*bodies: bytes) -> float:
    return round(sum(len(gzip.compress(body, compresslevel=9)) for body in bodies) / 1024, 1)


def test_counts_index_html_and_the_scripts_and_styles_it_references(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (tmp_path / "index.html").write_bytes(INDEX)
    files = {
        "index-Bx1.js": b"import './vendor-Cc2.js';\n" * 3000,
        "vendor-Cc2.js": NOISE.randbytes(4096),  # incompressible, so every file shows
        "index-Dd3.css": b"body { margin: 0 }\n" * 500,
        "lazy-Ee4.js": NOISE.randbytes(4096),  # a lazy chunk: not the first page
        "logo-Ff5.svg": b"<svg/>" * 100,
    }
    for name, body in files.items():
        (assets / name).write_bytes(body)
    (tmp_path / "favicon.svg").write_bytes(b"<svg/>" * 100)

    size = first_load_gzip_kib(tmp_path)

    first_page = (INDEX, files["index-Bx1.js"], files["vendor-Cc2.js"], files["index-Dd3.css"])
    assert size == _kib(*first_page)
    assert size < _kib(*first_page, files["lazy-Ee4.js"])


def test_is_none_without_a_build(tmp_path: Path) -> None:
    assert first_load_gzip_kib(tmp_path / "dist") is None
    (tmp_path / "dist" / "assets").mkdir(parents=True)
    assert first_load_gzip_kib(tmp_path / "dist") is None
