"""Maps the repository's top-level folders onto the single `financelake` import root.

The layout is fixed by DESIGN.md (services/, stream/, gen/...), while everything must
import as `financelake.*`; setuptools' package-dir does the mapping, and the package
list is derived from the folders so a new subpackage needs no edit here. One module is C:
the stream's TickBatch reader (stream/_tick_wire.c), built with the package.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import Extension, setup

ROOTS = {
    "financelake.services": "services",
    "financelake.stream": "stream",
    "financelake.models": "models",
    "financelake.gen": "gen/python",
    "financelake.client": "gen/client",
    "financelake.gateway": "gateway",
    "financelake.observability": "observability",
}


def _packages(prefix: str, folder: str) -> dict[str, str]:
    base = Path(folder)
    found: dict[str, str] = {}
    for init in sorted(base.rglob("__init__.py")):
        relative = init.parent.relative_to(base)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        name = ".".join((prefix, *relative.parts)) if relative.parts else prefix
        found[name] = init.parent.as_posix()
    return found


package_dir: dict[str, str] = {}
for prefix, folder in ROOTS.items():
    package_dir.update(_packages(prefix, folder))

setup(
    packages=sorted(package_dir),
    package_dir=package_dir,
    package_data={name: ["py.typed", "*.pyi"] for name in package_dir},
    ext_modules=[
        Extension(
            "financelake.stream._tick_wire",
            ["stream/_tick_wire.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra", "-Werror"],
        )
    ],
)
