"""Page tokens: opaque to clients, bound to the request they page.

A token is the urlsafe base64 of a small JSON array: what kind of list it continues, the
request fields that define that list, and where the next page starts. Each list RPC checks
the fields against its request and refuses a token of another request as INVALID_ARGUMENT on
`page_token`, never silently applying it to the wrong list. Tokens are not signed: a client
forging one can only ask for a page it could ask for directly.
"""

from __future__ import annotations

import base64
import binascii
import json

from financelake.services.errors import FieldViolation, InvalidInput


def invalid_token(why: str) -> InvalidInput:
    """INVALID_ARGUMENT on `page_token`, saying why."""
    return InvalidInput(
        f"page_token {why}",
        violations=[FieldViolation("page_token", why)],
        reason="INVALID_PAGE_TOKEN",
    )


def encode_token(items: list[object]) -> str:
    """The token holding `items` (JSON values)."""
    text = json.dumps(items, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_token(token: str) -> list[object]:
    """The items of a token `encode_token` made; INVALID_ARGUMENT for anything else."""
    try:
        items = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_token("is not a token from a previous page") from exc
    if not isinstance(items, list) or not items:
        raise invalid_token("is not a token from a previous page")
    return items
