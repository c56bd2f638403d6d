"""The lake as a server dependency: the servers that read Iceberg open it the same way.

`LakeOpener` opens the catalog from settings (creating the lake's tables when missing) as the
server starts and hands it over; if the catalog cannot be reached it keeps trying in the
background, so the server comes up and reports NOT_SERVING for the services that need the
lake rather than failing to start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pyiceberg.catalog import Catalog

from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import ensure_tables

logger = logging.getLogger(__name__)

RETRY_DELAY_S = 5.0


class LakeOpener:
    """Opens the lake when the server starts and passes the catalog to `on_open`."""

    def __init__(
        self,
        settings: Settings,
        on_open: Callable[[Catalog], Awaitable[None]],
        *,
        retry_delay_s: float = RETRY_DELAY_S,
    ) -> None:
        self._settings = settings
        self._on_open = on_open
        self._retry_delay_s = retry_delay_s
        self._retrying: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        # In threads: a remote catalog (Glue, REST) does network I/O.
        catalog = await asyncio.to_thread(open_catalog, self._settings)
        await asyncio.to_thread(ensure_tables, catalog)
        await self._on_open(catalog)

    async def start(self) -> None:
        """Open the lake now; if it cannot be reached, keep trying in the background."""
        try:
            await self._open()
        except Exception:
            logger.exception("the lake catalog cannot be opened yet; retrying")
            self._retrying = asyncio.create_task(self._retry(), name="lake-opener")

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(self._retry_delay_s)
            try:
                await self._open()
                return
            except Exception as exc:  # any catalog failure: log and keep trying
                logger.warning("the lake catalog cannot be opened yet: %s", exc)

    async def stop(self) -> None:
        """Stop retrying; catalog calls hold nothing open."""
        if self._retrying is not None:
            self._retrying.cancel()
