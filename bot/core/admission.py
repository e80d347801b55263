"""How many runs this process has in flight, and the queue of requests waiting for a slot.

One process can only do so much at once: past a point, more concurrent runs slow everything
down, the acks of new requests first. So at most `limit` runs are in flight
(IMAGEROUTE_MAX_IN_FLIGHT); a request past the limit takes a ticket and waits its turn in
arrival order, and the person who asked is told how many requests are ahead of theirs. A
request of n routes takes n slots at once (a comparison never starts half its routes).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable

from bot.core.observers import Observers, WorkQueue
from routes.pacing import Lane

DEFAULT_MAX_IN_FLIGHT = 64
# Of the runs in flight, how many may finish at once: read their answer, store it and post it
# (routes.pacing.Lane). Waiting on a provider costs nothing; finishing costs the event loop.
DEFAULT_MAX_FINISHING = 4


class Ticket:
    """One request's claim on run slots: admitted at once, or waiting in the queue."""

    def __init__(self, slots: RunSlots, runs: int, seq: int) -> None:
        self._slots = slots
        self.runs = runs
        self.seq = seq
        self._admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._released = False

    @property
    def admitted(self) -> bool:
        return self._admitted.done()

    def ahead(self) -> int:
        """Requests waiting ahead of this one (0 once admitted)."""
        return self._slots._ahead(self)

    async def wait(
        self, on_ahead: Callable[[int], Awaitable[bool]] | None = None, every: float = 5.0
    ) -> None:
        """Wait until admitted; every `every` seconds, offer `on_ahead` the new number of
        requests ahead when it changed (not on every move: each call edits a Slack message).
        `on_ahead` returns whether it told the requester; if not, it is offered again later."""
        told = self.ahead()
        while not self.admitted:
            try:
                await asyncio.wait_for(asyncio.shield(self._admitted), timeout=every)
            except TimeoutError:
                ahead = self.ahead()
                changed = on_ahead is not None and ahead != told and not self.admitted
                if changed and on_ahead is not None and await on_ahead(ahead):
                    told = ahead

    def release(self) -> None:
        """Give the slots back (or leave the queue); safe to call twice."""
        if not self._released:
            self._released = True
            self._slots._release(self)

    def _admit(self) -> None:
        if not self._admitted.done():
            self._admitted.set_result(None)


class RunSlots:
    """At most `limit` runs in flight in this process; requests past it wait in arrival order.
    Of the runs in flight, at most `finishing` read, store and post their answer at once
    (`lane`, entered by the Slack flow for each run).

    Everything happens on the event loop without awaiting, so no lock is needed."""

    def __init__(
        self,
        limit: int = DEFAULT_MAX_IN_FLIGHT,
        observers: Observers | None = None,
        finishing: int = DEFAULT_MAX_FINISHING,
    ) -> None:
        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.limit = limit
        self.in_flight = 0  # runs
        self.running = 0  # requests holding slots
        self.observers = observers
        self.lane = Lane(min(finishing, limit))
        self._queue: deque[Ticket] = deque()
        self._seq = itertools.count()

    def _report(self) -> None:
        if self.observers is not None:
            self.observers.emit(WorkQueue(running=self.running, waiting=len(self._queue)))

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def ticket(self, runs: int) -> Ticket:
        """A ticket for `runs` runs: admitted now when the slots are free and nobody is waiting
        (first come, first served), queued otherwise. Release it when the runs are done."""
        ticket = Ticket(self, max(1, min(runs, self.limit)), next(self._seq))
        if not self._queue and self.in_flight + ticket.runs <= self.limit:
            self.in_flight += ticket.runs
            self.running += 1
            ticket._admit()
        else:
            self._queue.append(ticket)
        self._report()
        return ticket

    def _ahead(self, ticket: Ticket) -> int:
        if ticket.admitted or not self._queue:
            return 0
        # Tickets leave the queue in order (only shutdown cancels one from the middle), so the
        # distance from the head is the number ahead; O(1) for any queue length.
        return max(ticket.seq - self._queue[0].seq, 0)

    def _release(self, ticket: Ticket) -> None:
        if ticket.admitted:
            self.in_flight -= ticket.runs
            self.running -= 1
        else:
            self._queue.remove(ticket)
        while self._queue and self.in_flight + self._queue[0].runs <= self.limit:
            head = self._queue.popleft()
            self.in_flight += head.runs
            self.running += 1
            head._admit()
        self._report()
