# The C extension built from _tick_wire.c.
def read_tick_batch(
    raw: bytes | memoryview, /
) -> tuple[str, bytes, bytes, bytes, bytes, bytes, bytes, bytes] | None: ...
