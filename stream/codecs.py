"""Faust codecs for the Kafka payloads: the contracts' protobuf messages.

Registered once under the names in `CODECS`; topics name them as their value serializer, so
agents receive decoded values and producers send bytes they serialized themselves. Tick
batches decode straight to columns (`TickColumns`), once per record for all their agents.
Bytes that do not decode become `Malformed` values, which agents skip and log: raising
instead would hand Faust a decode error, on which it acknowledges the record unprocessed (a
silent loss) or stops the agent.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs
from google.protobuf.message import DecodeError, Message

from financelake.gen.common.v1 import alert_pb2, bar_pb2
from financelake.stream.agents.core import Malformed
from financelake.stream.tick_columns import decode_tick_batch


class ProtobufCodec(codecs.Codec):
    """One protobuf message type per codec: bytes in, message out (and back)."""

    def __init__(self, message_type: type[Message]) -> None:
        super().__init__()
        self.message_type = message_type

    def _loads(self, s: bytes) -> Any:
        try:
            return self.message_type.FromString(s)
        except DecodeError as exc:
            return Malformed(f"not a {self.message_type.__name__}: {exc}")

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return obj
        if not isinstance(obj, self.message_type):
            raise TypeError(f"expected {self.message_type.__name__}, got {type(obj).__name__}")
        data: bytes = obj.SerializeToString()
        return data


class TickColumnsCodec(codecs.Codec):
    """`TickBatch` bytes in, `TickColumns` out (consume only: nothing produces columns)."""

    def _loads(self, s: bytes) -> Any:
        try:
            return decode_tick_batch(s)
        except Exception as exc:
            # Whatever foreign bytes make the decoder raise: an exception escaping a codec
            # reaches Faust as a decode error, and Faust acknowledges that record unseen.
            return Malformed(f"not a valid TickBatch: {type(exc).__name__}: {exc}")

    def _dumps(self, obj: Any) -> bytes:
        raise TypeError("tick columns are not produced; send serialized TickBatch bytes")


TICK_BATCH = "financelake.tick_batch"
BAR = "financelake.bar"
ALERT = "financelake.alert"

CODECS: dict[str, type[Message]] = {
    BAR: bar_pb2.Bar,
    ALERT: alert_pb2.Alert,
}


def register_codecs() -> None:
    """Make the codecs known to Faust (idempotent)."""
    codecs.register(TICK_BATCH, TickColumnsCodec())
    for name, message_type in CODECS.items():
        codecs.register(name, ProtobufCodec(message_type))
