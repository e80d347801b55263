"""The bot's own work per ack, in process, printed as figures (not a test): a signed `/imagegen`
dispatched through the product's Bolt app (signature, middleware, listener, validation, ack)
against a bare Bolt AsyncApp whose listener only acks, both in this process, alternately.

    uv run python bench/bench_ack_cost.py [--requests 300] [--rounds 3] [--profile]

CPU time per dispatch (time.process_time), no HTTP: what bench_acks.py's end-to-end ack adds to
the floor, without the load client, the fakes or the other processes sharing the machine. The
runs the product starts are left waiting (a demo route of 30 s) and cancelled at the end.
`--profile` prints cProfile's top entries for the product's dispatches.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: E402
from slack_bolt.request.async_request import AsyncBoltRequest  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bot.wiring.runtime import Runtime  # noqa: E402
from bot.wiring.serve import start_bot  # noqa: E402
from bot.wiring.settings import Settings  # noqa: E402
from tests.fakes.slack import SlackFake, signed_headers  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-bench-0000-bot-token"
CONFIG = '[routes.busy]\nkind = "demo"\ndelay_seconds = 30\n'


def command(seq: int) -> AsyncBoltRequest:
    form = {
        "token": "legacy",
        "team_id": "T0BENCH",
        "channel_id": "C0BENCH0001",
        "user_id": f"U0BENCH{seq % 50:03d}",
        "command": "/imagegen",
        "text": f'route=busy prompt="a red kite {seq}" size=1024x1024',
        "api_app_id": "A0BENCH",
        "response_url": "http://127.0.0.1:9/response",
        "trigger_id": f"trigger.{seq}.{time.time_ns()}",
    }
    body = urlencode(form)
    headers: dict[str, str | Sequence[str]] = {**signed_headers(body, SECRET)}
    return AsyncBoltRequest(body=body, headers=headers)


async def per_ack(app: AsyncApp, n: int, profile: cProfile.Profile | None = None) -> float:
    """Microseconds of CPU per dispatch of `n` signed commands, one after another."""
    requests = [command(i) for i in range(n)]
    t0 = time.process_time()
    if profile is not None:
        profile.enable()
    for request in requests:
        response = await app.async_dispatch(request)
        assert response.status == 200, response.body
    if profile is not None:
        profile.disable()
    return (time.process_time() - t0) / n * 1e6


async def main(n: int, rounds: int, profile: bool) -> None:
    slack = SlackFake()
    slack.token = TOKEN
    slack.start()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "imageroute.toml").write_text(CONFIG, encoding="utf-8")
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp}/bench.db",
            asset_store=f"file://{tmp}/assets",
            imageroute_spool=tmp / "spool",
            imageroute_config=tmp / "imageroute.toml",
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
        )
        runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
        await runtime.warm()
        bot = await start_bot(settings, runtime)
        bare = AsyncApp(
            name="bare",
            token=TOKEN,
            signing_secret=SECRET,
            process_before_response=True,  # as the bot
            client=AsyncWebClient(token=TOKEN, base_url=slack.api_url),
        )

        @bare.command("/imagegen")
        async def imagegen(ack: AsyncAck) -> None:
            await ack()

        await per_ack(bare, 20)  # the bare app's auth.test, once
        gc.collect()
        gc.freeze()  # as `serve` once ready
        ratios = []
        for _ in range(rounds):
            floor, ours = await per_ack(bare, n), await per_ack(bot.app, n)
            ratios.append(ours / floor)
            print(
                f"bare Bolt {floor:6.1f} µs per ack, imageroute {ours:6.1f} µs per ack: "
                f"{ours / floor:.2f}x"
            )
        print(f"median ratio over {rounds} rounds: {sorted(ratios)[len(ratios) // 2]:.2f}x")
        if profile:
            prof = cProfile.Profile()
            await per_ack(bot.app, n, prof)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        for task in list(bot.tasks._tasks):
            task.cancel()
        await bot.tasks.drain(5)
        await bot.aclose()
        await runtime.aclose()
    slack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds, args.profile))
