"""`take_step`: how the stream's Faust agents cut their input into steps."""

from __future__ import annotations

import asyncio
import time

from financelake.stream.agents.driver import take_step


def test_a_step_takes_what_is_queued_up_to_its_size_at_once() -> None:
    async def main() -> tuple[list[int], list[int], float]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for item in range(7):
            queue.put_nowait(item)
        started = time.perf_counter()
        first = await take_step(queue, 5, within_s=10.0)
        second = await take_step(queue, 5, within_s=0.05)
        return first, second, time.perf_counter() - started

    first, second, elapsed = asyncio.run(main())
    assert (first, second) == ([0, 1, 2, 3, 4], [5, 6])
    assert elapsed < 1.0  # the full step did not wait out its 10 s


def test_a_step_takes_what_arrives_within_its_time_and_leaves_the_rest() -> None:
    async def main() -> tuple[list[str], list[str]]:  # two steps in a row
        queue: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, queue.put_nowait, "first")
        loop.call_later(0.10, queue.put_nowait, "soon after")
        loop.call_later(0.50, queue.put_nowait, "too late")
        return await take_step(queue, 100, 0.3), await take_step(queue, 100, 0.3)

    assert asyncio.run(main()) == (["first", "soon after"], ["too late"])


def test_after_a_quiet_spell_the_first_item_is_handed_on_at_once() -> None:
    async def main() -> tuple[list[str], float]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        asyncio.get_running_loop().call_later(0.3, queue.put_nowait, "late")
        started = time.perf_counter()
        step = await take_step(queue, 100, within_s=0.1)
        return step, time.perf_counter() - started

    step, elapsed = asyncio.run(main())
    assert step == ["late"]
    assert elapsed < 0.38  # not another 0.1 s once it came


def test_items_left_when_the_wait_times_out_stay_queued() -> None:
    async def main() -> tuple[list[int], int]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        queue.put_nowait(1)
        step = await take_step(queue, 3, within_s=0.01)
        queue.put_nowait(2)
        return step, queue.get_nowait()

    assert asyncio.run(main()) == ([1], 2)
