"""The fan-out behind live feeds: filtered, bounded per subscriber, never blocked by one."""

from __future__ import annotations

import asyncio

import pytest

from financelake.services.errors import Overloaded, Unavailable
from financelake.services.feed import Delivery, FanOut

pytestmark = pytest.mark.unit


async def _take(subscription, count: int) -> list[Delivery[int]]:
    return [await asyncio.wait_for(anext(subscription), 1) for _ in range(count)]


async def test_each_subscriber_gets_what_its_filter_keeps_in_order() -> None:
    hub: FanOut[int] = FanOut(buffer_size=8, max_subscribers=10)
    evens = hub.add(lambda n: n % 2 == 0)
    everything = hub.add()

    for n in range(6):
        hub.publish(n)

    assert [d.item for d in await _take(evens, 3)] == [0, 2, 4]
    assert [d.item for d in await _take(everything, 6)] == [0, 1, 2, 3, 4, 5]


async def test_a_full_buffer_drops_its_oldest_and_marks_the_next_delivery() -> None:
    hub: FanOut[int] = FanOut(buffer_size=3, max_subscribers=10)
    slow = hub.add()
    fast = hub.add()

    for n in range(5):
        hub.publish(n)
        assert (await _take(fast, 1))[0].item == n  # the slow one never held it back

    assert await _take(slow, 3) == [Delivery(2, 2), Delivery(3, 0), Delivery(4, 0)]
    assert hub.dropped == 2


async def test_a_waiting_subscriber_wakes_on_publish() -> None:
    hub: FanOut[int] = FanOut(buffer_size=3, max_subscribers=10)
    subscription = hub.add()
    waiting = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0)

    hub.publish(7)

    assert await asyncio.wait_for(waiting, 1) == Delivery(7, 0)


async def test_removed_subscribers_get_nothing_more() -> None:
    hub: FanOut[int] = FanOut(buffer_size=3, max_subscribers=10)
    subscription = hub.add()
    hub.remove(subscription)

    hub.publish(1)

    assert hub.subscribers == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(subscription), 0.05)


async def test_ending_delivers_the_buffer_then_raises() -> None:
    hub: FanOut[int] = FanOut(buffer_size=3, max_subscribers=10)
    subscription = hub.add()
    hub.publish(1)

    hub.end_all("gone")

    assert (await _take(subscription, 1))[0].item == 1
    with pytest.raises(Unavailable, match="gone"):
        await anext(subscription)
    assert hub.subscribers == 0


def test_subscribers_beyond_the_limit_are_refused() -> None:
    hub: FanOut[int] = FanOut(buffer_size=3, max_subscribers=1)
    hub.add()

    with pytest.raises(Overloaded):
        hub.add()
