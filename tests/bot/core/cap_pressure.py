"""One process's share of cap pressure: `python -m tests.bot.core.cap_pressure SETTINGS_JSON N
START_AT`. Opens a runtime like the bot does, waits until START_AT (unix seconds, so several
processes start together), then makes N concurrent admissions, each running its route when
admitted, and prints a JSON line: how many were admitted and refused."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bot.core.runs import RunOrigin
from bot.core.spend import OverCap
from bot.wiring.runtime import Runtime
from bot.wiring.settings import Settings
from routes.model import ImageRequest

USER = "U0CAPPED"


async def one(runtime: Runtime, n: int) -> bool:
    request = ImageRequest(prompt=f"poster {n}")
    try:
        hold = await runtime.spend.reserve(["paid"], USER, request)
    except OverCap:
        return False
    try:
        await runtime.runs.run("paid", request, RunOrigin(source="slack", slack_user=USER))
    finally:
        await runtime.spend.release(hold)
    return True


async def main(settings: Settings, count: int, start_at: float) -> None:
    runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
    try:
        await asyncio.sleep(max(start_at - time.time(), 0.0))
        admitted = await asyncio.gather(*(one(runtime, i) for i in range(count)))
    finally:
        await runtime.aclose()
    print(json.dumps({"admitted": sum(admitted), "refused": admitted.count(False)}))


if __name__ == "__main__":
    values = json.loads(sys.argv[1])
    asyncio.run(main(Settings(_env_file=None, **values), int(sys.argv[2]), float(sys.argv[3])))
