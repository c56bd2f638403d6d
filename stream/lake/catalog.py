"""The one place that opens the Iceberg catalog from settings.

Locally a SqlCatalog on SQLite with a file warehouse under `home/lake` (no server to run);
in the cluster whatever pyiceberg catalog the properties name (Glue or REST, S3 warehouse).
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import SqlCatalog

from financelake.services.settings import Settings


def open_catalog(settings: Settings) -> Catalog:
    """The lake's catalog, as the settings configure it."""
    lake = settings.lake
    if lake.catalog_properties:
        return load_catalog(lake.catalog_name, **lake.catalog_properties)
    root = (settings.home / "lake").expanduser().resolve()
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        lake.catalog_name,
        uri=f"sqlite:///{root / 'catalog.db'}",
        warehouse=(root / "warehouse").as_uri(),
    )
