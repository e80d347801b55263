"""Every read surface at scale, printed as figures (not a test): stats, advice, App Home, the
spend-cap check and the export, over a run log of 100k or 1M runs on SQLite or PostgreSQL.

    # seed once (outside the repo; a 1M seed takes minutes: nice it on a shared machine)
    nice -n 10 uv run python bench/bench_scale.py seed sqlite:////tmp/scale/1m.db --runs 1000000
    nice -n 10 uv run python bench/bench_scale.py seed \
        postgresql+psycopg://postgres@127.0.0.1:55432/scale_1m --runs 1000000
    # a copy to upgrade (the seed stays at the schema it was written with)
    uv run python bench/bench_scale.py clone sqlite:////tmp/scale/1m.db sqlite:////tmp/scale/1m-b.db
    # upgrade the copy, and give its runs the acceptance checks the bot now writes
    DATABASE_URL=sqlite:////tmp/scale/1m-b.db uv run imageroute db upgrade
    uv run python bench/bench_scale.py seed-checks sqlite:////tmp/scale/1m-b.db
    # time the surfaces
    uv run python bench/bench_scale.py surfaces sqlite:////tmp/scale/1m-b.db --repeat 5 --export

The history is written by bench/seeding.py through the product's tables. Surfaces are timed end
to end through the real bot over HTTP on loopback against the fake Slack Web API of tests/fakes:
a signed `/imageroute stats` until its message reaches Slack, advice likewise, App Home from the
event until views.publish arrives. The spend-cap check is SpendPolicy.refusal on one capped
route (and on a capped 9-route comparison), then a whole admission (reserve and release, a write
under the admission lock); the export is `imageroute export --format csv` in a
fresh process, with that process's peak RSS. Targets at 1M runs on both databases: stats, advice
and App Home under 200 ms, the cap check under 5 ms, the export under 2 minutes with flat memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seeding import CHANNELS, ROUTES, USERS, seed, seed_checks
from bot.wiring.runtime import Runtime
from bot.wiring.settings import Settings
from routes.model import ImageRequest
from storage.db import make_engine
from tests.bot.conftest import BOT_TOKEN, SIGNING_SECRET, BotHarness, serve_bot
from tests.fakes.slack import SlackFake

# `/imageroute` answers privately, through the command's response_url.
ANSWERED = "response_url"
QUESTION = "we're on GCP and need product shots with transparent backgrounds"
USER = USERS[7]
# Asked from one of the seeded channels: stats then count the user's runs and that channel's
# (what they may see), about 2.5% of the history.
CHANNEL = CHANNELS[3]


def routes_file() -> str:
    """Demo routes named like the seeded ones (same board rows, owners and caps): no network,
    and every surface reads the seeded history of a configured route."""
    parts = ["[limits]\nuser_daily_spend_usd = 100.0\n"]
    for route in ROUTES:
        parts.append(
            f'[routes.{route.id}]\nkind = "demo"\nboard = "{route.board}"\n'
            f'billing_owner = "{route.billing_owner}"\ndaily_spend_usd = 1000.0\n'
            f"estimated_usd_per_image = {route.cost_usd or 0.05}\n"
        )
    return "\n".join(parts)


# -- seed and clone --------------------------------------------------------------------------
def ensure_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def cmd_seed(url: str, runs: int, days: float) -> None:
    ensure_database(url)
    engine = make_engine(url)
    t0 = time.perf_counter()
    done = seed(engine, runs, days=days)
    wall = time.perf_counter() - t0
    engine.dispose()
    print(
        f"seeded {done.runs:,} runs (ids {done.first_id}..{done.last_id}), {done.assets:,} "
        f"assets, {done.run_checks:,} acceptance checks, {done.verdicts:,} verdicts, "
        f"{done.health_checks:,} health probes over "
        f"{days:g} days in {wall:.1f} s ({done.runs / wall:,.0f} runs/s)"
    )


def cmd_seed_checks(url: str) -> None:
    engine = make_engine(url)
    t0 = time.perf_counter()
    written = seed_checks(engine)
    engine.dispose()
    print(f"seeded {written:,} acceptance checks in {time.perf_counter() - t0:.1f} s")


def cmd_clone(source: str, target: str) -> None:
    """A copy of a seeded database (SQLite file copy; PostgreSQL CREATE DATABASE ... TEMPLATE)."""
    src, dst = make_url(source), make_url(target)
    if src.get_backend_name() == "sqlite":
        assert src.database and dst.database
        for suffix in ("-wal", "-shm"):
            Path(dst.database + suffix).unlink(missing_ok=True)
        engine = make_engine(source)
        with engine.connect() as conn:  # fold the WAL into the file before copying it
            conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        engine.dispose()
        shutil.copyfile(src.database, dst.database)
    else:
        admin = sa.create_engine(src.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dst.database}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{dst.database}" TEMPLATE "{src.database}"'))
        admin.dispose()
    print(f"cloned {source} -> {target}")


# -- surfaces --------------------------------------------------------------------------------
def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def start(
    tmp: Path, fake: SlackFake, url: str
) -> tuple[BotHarness, uvicorn.Server, asyncio.Task[None]]:
    (tmp / "imageroute.toml").write_text(routes_file(), encoding="utf-8")
    settings = Settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        imageroute_config=tmp / "imageroute.toml",
        database_url=url,
        asset_store=f"file://{tmp}/assets",
    )
    t0 = time.perf_counter()
    runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
    print(f"runtime open (migrations included): {time.perf_counter() - t0:.2f} s")
    return await serve_bot(settings, runtime, fake, timeout=600)


async def until_slack_gets(
    h: BotHarness, method: str, send: Callable[[], Awaitable[httpx.Response]]
) -> float:
    """Seconds from sending a signed request to the fake Slack receiving `method` (a Web API
    method, or ANSWERED: a post to the command's response_url)."""

    def count() -> int:
        return len(h.slack.responses) if method == ANSWERED else len(h.slack.calls(method))

    before = count()
    t0 = time.perf_counter()
    response = await send()
    assert response.status_code == 200, response.text
    await h.slack.received(lambda: count() > before, timeout=120)
    return time.perf_counter() - t0


def figures(name: str, times: list[float], target_ms: float, unit: float = 1000) -> None:
    first, rest = times[0], times[1:] or times
    print(
        f"{name:<34} first {first * unit:9.1f} ms   median {statistics.median(rest) * unit:9.1f} ms"
        f"   max {max(rest) * unit:9.1f} ms   (target < {target_ms:g} ms)"
    )


async def time_surfaces(url: str, repeat: int, export: bool, only: set[str]) -> None:
    fake = SlackFake().start()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        h, server, task = await start(tmp, fake, url)
        try:
            with h.runtime.engine.connect() as conn:
                runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
            print(
                f"database: {h.runtime.engine.dialect.name}, {runs:,} runs; load average "
                f"{os.getloadavg()[0]:.2f} (2 cores, shared)"
            )
            rss0 = rss_mb()
            if "stats" in only:
                stats = [
                    await until_slack_gets(
                        h,
                        ANSWERED,
                        lambda: h.command("/imageroute", "stats", user=USER, channel=CHANNEL),
                    )
                    for _ in range(repeat)
                ]
                figures("/imageroute stats", stats, 200)
            if "advice" in only:
                advice = [
                    await until_slack_gets(
                        h,
                        ANSWERED,
                        lambda: h.command("/imageroute", QUESTION, user=USER, channel=CHANNEL),
                    )
                    for _ in range(repeat)
                ]
                figures("/imageroute <question>", advice, 200)
            if "home" in only:
                event = {"type": "app_home_opened", "user": USER, "tab": "home", "channel": "D0"}
                home = [
                    await until_slack_gets(h, "views.publish", lambda: h.event(event))
                    for _ in range(repeat)
                ]
                figures("App Home", home, 200)
            print(f"peak RSS growth over the Slack surfaces: +{rss_mb() - rss0:.0f} MB")
            if "cap" in only:
                await time_caps(h, repeat)
        finally:
            await h.bot.tasks.drain(10)
            await h.bot.aclose()
            await h.client.aclose()
            server.should_exit = True
            await task
            await h.runtime.aclose()
            fake.stop()
        if export:
            time_export(url, tmp)


async def time_caps(h: BotHarness, repeat: int) -> None:
    spend = h.runtime.spend
    request = ImageRequest(prompt="a red kite")
    one = ROUTES[1].id
    single, every = [], []
    for _ in range(max(repeat, 20)):
        t0 = time.perf_counter()
        refused = await spend.refusal([one], USER, request)
        single.append(time.perf_counter() - t0)
        assert refused is None, refused
    for _ in range(max(repeat, 5)):
        t0 = time.perf_counter()
        refused = await spend.refusal([r.id for r in ROUTES], USER, request)
        every.append(time.perf_counter() - t0)
        assert refused is None, refused
    admitted = []
    for _ in range(max(repeat, 20)):
        t0 = time.perf_counter()
        hold = await spend.reserve([one], USER, request)
        await spend.release(hold)
        admitted.append(time.perf_counter() - t0)
    figures("spend-cap check (1 route + user)", single, 5)
    figures("spend-cap check (9-route comparison)", every, 45)
    figures("admission: reserve + release (1 route)", admitted, 20)


def time_export(url: str, tmp: Path) -> None:
    out = tmp / "runs.csv"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "IMAGEROUTE_CONFIG": str(tmp / "imageroute.toml"),
        "ASSET_STORE": f"file://{tmp}/assets",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    (tmp / "imageroute.toml").write_text(routes_file(), encoding="utf-8")
    command = [sys.executable, "-m", "bot", "export", "--format", "csv", "--output", str(out)]
    t0 = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    stderr = process.stderr.read().decode() if process.stderr else ""
    if status != 0:
        raise SystemExit(f"export failed ({status}): {stderr}")
    rows = max(sum(1 for _ in out.open(encoding="utf-8")) - 1, 0)
    print(
        f"{'export --format csv':<34} {wall:9.1f} s for {rows:,} runs ({rows / wall:,.0f} rows/s), "
        f"{out.stat().st_size / 1e6:,.0f} MB, peak RSS {usage.ru_maxrss / 1024:,.0f} MB "
        "(target < 120 s, flat memory)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_seed = sub.add_parser("seed", help="write N synthetic runs into DATABASE_URL")
    p_seed.add_argument("url")
    p_seed.add_argument("--runs", type=int, default=100_000)
    p_seed.add_argument("--days", type=float, default=365.0)
    p_checks = sub.add_parser(
        "seed-checks", help="acceptance checks for seeded runs that have none (after upgrading)"
    )
    p_checks.add_argument("url")
    p_clone = sub.add_parser("clone", help="copy a seeded database")
    p_clone.add_argument("source")
    p_clone.add_argument("target")
    p_time = sub.add_parser("surfaces", help="time every surface over DATABASE_URL")
    p_time.add_argument("url")
    p_time.add_argument("--repeat", type=int, default=5)
    p_time.add_argument("--export", action="store_true", help="also time a full CSV export")
    p_time.add_argument(
        "--only", default="stats,advice,home,cap", help="comma-separated: stats,advice,home,cap"
    )
    args = parser.parse_args()
    if args.command == "seed":
        cmd_seed(args.url, args.runs, args.days)
    elif args.command == "seed-checks":
        cmd_seed_checks(args.url)
    elif args.command == "clone":
        cmd_clone(args.source, args.target)
    else:
        only = set(args.only.split(",")) if args.only else set()
        asyncio.run(time_surfaces(args.url, args.repeat, args.export, only))


if __name__ == "__main__":
    main()
