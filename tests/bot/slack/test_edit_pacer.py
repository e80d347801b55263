"""The chat.update budget shared by every scoreboard: edits wait in line, finals first."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.slack.scoreboard import EditPacer


async def taken(pacer: EditPacer, name: str, order: list[str], reserve: float = 0.0) -> None:
    await pacer.take(reserve)
    order.append(name)


async def test_edits_past_the_burst_go_in_arrival_order_at_the_budget_rate() -> None:
    pacer = EditPacer(per_minute=600, burst=1)  # one edit now, then one every 0.1 s
    order: list[str] = []
    t0 = time.monotonic()
    await asyncio.gather(*(taken(pacer, f"e{i}", order) for i in range(5)))
    took = time.monotonic() - t0
    assert order == ["e0", "e1", "e2", "e3", "e4"]
    assert 0.35 <= took < 1.5


async def test_a_final_edit_goes_ahead_of_waiting_progress_edits() -> None:
    pacer = EditPacer(per_minute=600, burst=2)
    order: list[str] = []
    await pacer.take()
    await pacer.take()  # the budget is spent
    progress = [asyncio.create_task(taken(pacer, f"p{i}", order, reserve=0.5)) for i in range(3)]
    await asyncio.sleep(0.01)
    final = asyncio.create_task(taken(pacer, "final", order))
    await asyncio.gather(final, *progress)
    assert order[0] == "final" and sorted(order[1:]) == ["p0", "p1", "p2"]


async def test_a_cancelled_edit_leaves_the_line() -> None:
    pacer = EditPacer(per_minute=600, burst=1)
    order: list[str] = []
    await pacer.take()
    first = asyncio.create_task(taken(pacer, "gone", order))
    second = asyncio.create_task(taken(pacer, "next", order))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.wait_for(second, 1.0)
    assert order == ["next"]


async def test_waiting_edits_wake_once_each_not_at_every_token() -> None:
    """Each waiting edit is woken when its turn comes, not every time a token arrives."""
    pacer = EditPacer(per_minute=6000, burst=1)  # one every 10 ms
    order: list[str] = []
    await pacer.take()
    loop = asyncio.get_running_loop()
    scheduled = 0
    call_later = loop.call_later

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scheduled
        scheduled += 1
        return call_later(*args, **kwargs)

    loop.call_later = counted  # type: ignore[method-assign,assignment]
    try:
        await asyncio.gather(*(taken(pacer, f"e{i}", order) for i in range(50)))
    finally:
        loop.call_later = call_later  # type: ignore[method-assign]
    assert len(order) == 50
    # One timer per edit served (plus one rescheduling per arrival), never one per waiter per
    # token: 50 waiters and 50 tokens would be 1,275 timers.
    assert scheduled <= 2 * 50 + 5
