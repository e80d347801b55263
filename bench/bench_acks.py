"""Ack latency under load, printed as figures (not a test): the bot against a bare Bolt app
measured in the same run as the floor.

    uv run python bench/bench_acks.py [--waves 6] [--levels 50,200] [--max-in-flight 64]
        [--max-finishing 4]
    uv run python bench/bench_acks.py --stats-db sqlite:////tmp/scale/1m.db   # + stats at 1M

Four processes, so neither the load nor the fakes share the server's event loop or GIL:
- this one: the fake Slack Web API (tests/fakes) and the orchestration;
- the bot: `imageroute serve --http` with demo routes that take 2 s per image;
- the floor: a bare Bolt AsyncApp with one ack-only `/imagegen`, on the same Starlette and
  uvicorn stack, with Bolt's defaults; and the same app with process_before_response=True
  (what the bot uses: Bolt answers when the listener returns instead of polling for the ack);
- the load client (`bench_acks.py load`): waves of N signed `/imagegen` sent at once, the
  latency of each ack recorded.
Each level (50 and 200 in flight) runs on the floor, then on the bot, then both again; the bot
is left to finish its runs before the next measurement. Each measurement starts with an untimed
wave. With `--stats-db`, the bot serves that database, and the same acks are timed without,
then with, `/imageroute stats` read over and over. Targets: bot p99 within 1.5x the floor's at
200 in flight; past the in-flight limit the scoreboard says "queued", the ack stays fast; with
stats read at 1M runs, the ack p99 stays under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-0000-bot-token"
# A real OpenAI route (the openai SDK) against the strict fake OpenAI of tests/fakes, answering
# after PROVIDER_SECONDS with a 1024x1024 PNG of realistic size: the bot's own work per run
# (decode, store, upload) is real, the provider's rendering costs this machine nothing.
PROVIDER_SECONDS = 2.0
CONFIG = """
[routes.busy]
kind = "openai"
model = "gpt-image-2"
api_key = "sk-bench-0123456789abcdef"
base_url = "{url}"
max_concurrency = 1000
"""


def provider_image() -> bytes:
    import io
    import random

    from PIL import Image

    rng = random.Random(19)
    noise = bytes(rng.getrandbits(8) if i % 3 else 0 for i in range(512 * 512 * 3))
    image = Image.frombytes("RGB", (512, 512), noise).resize((1024, 1024))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def start_provider() -> Any:
    from tests.fakes.openai import OpenAIFake

    fake = OpenAIFake(api_key="sk-bench-0123456789abcdef")
    fake.image = provider_image()

    def slow(endpoint: str, req: Any) -> Any:
        reply = fake._ok(endpoint, req)  # type: ignore[arg-type]
        reply.delay = PROVIDER_SECONDS
        return reply

    fake.intercept = slow
    return fake.start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- the load client (its own process) -------------------------------------------------------
def signed_command(command: str, text: str, seq: int) -> tuple[str, dict[str, str]]:
    from tests.fakes.slack import signed_headers

    form = {
        "token": "legacy",
        "team_id": "T0BENCH",
        "channel_id": "C0BENCH0001",
        "user_id": f"U0BENCH{seq % 50:03d}",
        "command": command,
        "text": text,
        "api_app_id": "A0BENCH",
        "response_url": "http://127.0.0.1:9/response",
        "trigger_id": f"trigger.{os.getpid()}.{seq}.{time.time_ns()}",
    }
    body = urlencode(form)
    return body, signed_headers(body, SIGNING_SECRET)


async def load(url: str, in_flight: int, waves: int, gap: float, command: str, text: str) -> None:
    """Waves of `in_flight` signed commands sent at once; prints the ack latencies (ms) as JSON."""
    latencies: list[float] = []
    # A new connection per request, as Slack's deliveries mostly are (and no keep-alive race
    # with the server closing an idle connection between waves).
    limits = httpx.Limits(max_connections=in_flight + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        seq = 0

        async def one(n: int) -> None:
            body, headers = signed_command(command, text.format(n=n), n)
            t0 = time.perf_counter()
            response = await client.post("/slack/events", content=body, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"ack failed: {response.status_code} {response.text[:200]}")

        # One untimed wave first: connections and everything a process does once (the bot's
        # first run after start is bench_ready.py's figure, not this one's).
        await asyncio.gather(*(one(-1 - i) for i in range(in_flight)))
        await asyncio.sleep(gap)
        latencies.clear()
        for _ in range(waves):
            await asyncio.gather(*(one(seq + i) for i in range(in_flight)))
            seq += in_flight
            await asyncio.sleep(gap)
    print(json.dumps(latencies))


async def read_stats_forever(url: str, every: float) -> None:
    """`/imageroute stats` over and over (the stats reader while acks are timed)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        n = 0
        while True:
            body, headers = signed_command("/imageroute", "stats", n)
            await client.post("/slack/events", content=body, headers=headers)
            n += 1
            await asyncio.sleep(every)


# -- the floor: a bare Bolt app (its own process) --------------------------------------------
def bare(port: int, api_url: str, before_response: bool) -> None:
    import uvicorn
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        token=BOT_TOKEN,
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
        process_before_response=before_response,
    )

    @app.command("/imagegen")
    async def imagegen(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    http = Starlette(
        routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)]
    )
    uvicorn.run(http, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- orchestration ---------------------------------------------------------------------------
# Each child's stderr goes to a file, never a pipe: a pipe nobody reads fills up, and the
# child's next log line then blocks forever with its logging lock held.
LOGS: dict[int, IO[bytes]] = {}


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the process is stopped
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    LOGS[proc.pid] = log
    return proc


def stderr_of(proc: subprocess.Popen[bytes]) -> str:
    log = LOGS[proc.pid]
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(args, env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        LOGS.pop(proc.pid).close()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited: {stderr_of(proc)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} never became healthy")


def wait_idle(url: str, timeout: float = 600) -> None:
    """Until the bot has no run in flight or queued (the last wave's runs are done; scoreboard
    edits may still wait for Slack's chat.update pace, which costs the bot nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/healthz", timeout=5).json()
        if body.get("runs_in_flight", 0) == 0 and body.get("requests_queued", 0) == 0:
            return
        time.sleep(0.2)
    raise SystemExit("the bot did not finish its runs")


def measure(url: str, in_flight: int, waves: int, gap: float, text: str) -> list[float]:
    out = subprocess.run(
        [sys.executable, __file__, "load", url, "--in-flight", str(in_flight),
         "--waves", str(waves), "--gap", str(gap), "--text", text],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"the load client failed on {url}: {out.stderr[-2000:]}")
    return list(json.loads(out.stdout))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} p50 {pct(values, 50):7.1f} ms   p99 {pct(values, 99):7.1f} ms   "
        f"max {max(values):7.1f} ms   ({len(values)} acks)"
    )


def main(args: argparse.Namespace) -> None:
    from tests.fakes.slack import SlackFake

    fake = SlackFake()
    fake.token = BOT_TOKEN  # auth.test answers this token only
    fake.start()
    provider = start_provider()
    print(f"provider answers in {PROVIDER_SECONDS:g} s with a {len(provider.image):,}-byte PNG")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        config = CONFIG.replace("{url}", provider.url)
        (tmp / "imageroute.toml").write_text(config, encoding="utf-8")
        bot_env = {
            **env,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "IMAGEROUTE_CONFIG": str(tmp / "imageroute.toml"),
            "DATABASE_URL": args.stats_db or f"sqlite:///{tmp}/bench.db",
            "ASSET_STORE": f"file://{tmp}/assets",
            "IMAGEROUTE_MAX_IN_FLIGHT": str(args.max_in_flight),
            "IMAGEROUTE_MAX_FINISHING": str(args.max_finishing),
        }
        ports = [free_port() for _ in range(3)]
        bot_url, bare_url, inline_url = (f"http://127.0.0.1:{p}" for p in ports)
        bot_cmd = [sys.executable, "-m", "bot", "serve", "--http", "--port", str(ports[0]),
                   "--host", "127.0.0.1", "--no-probes"]  # fmt: skip
        bare_cmd = [sys.executable, __file__, "bare", str(ports[1]), fake.api_url]
        inline_cmd = [*bare_cmd[:3], str(ports[2]), fake.api_url, "--before-response"]
        with (
            process(bot_cmd, bot_env) as bot,
            process(bare_cmd, env) as floor,
            process(inline_cmd, env) as inline,
        ):
            for url, proc in ((bot_url, bot), (bare_url, floor), (inline_url, inline)):
                wait_healthy(url, proc)
            print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores, shared)")
            cpu0 = cpu_seconds(bot.pid)
            if args.stats_db:
                stats_under_load(args, bot_url)
            else:
                floor_and_bot(args, bot_url, bare_url, inline_url)
            bot_cpu = cpu_seconds(bot.pid) - cpu0
            print(f"load average at end: {os.getloadavg()[0]:.2f}")
    fake.stop()
    provider.stop()
    posted = [fake._args(call) for call in fake.calls("chat.postMessage")]
    parents = [a for a in posted if not a.get("thread_ts")]
    queued = [a for a in parents if "queued (" in str(a.get("blocks"))]
    updated = [
        a for a in (fake._args(c) for c in fake.calls("chat.update")) if "queued (" in str(a)
    ]
    runs = len(fake.calls("files.completeUploadExternal"))
    print(
        f"bot CPU: {bot_cpu:.1f} s for {len(parents)} requests and {runs} images uploaded "
        f"({bot_cpu / max(runs, 1) * 1000:.0f} ms per run, ack included; the checks process's "
        "CPU is not counted)"
    )
    print(
        f"scoreboards posted: {len(parents)}; opened as 'queued (n ahead)' (past the limit of "
        f"{args.max_in_flight} runs in flight): {len(queued)}; edits showing a queue "
        f"position: {len(updated)}"
    )


def floor_and_bot(args: argparse.Namespace, bot_url: str, bare_url: str, inline_url: str) -> None:
    text = 'route=busy prompt="ack {n}"'
    targets = (
        ("bare Bolt", bare_url),
        ("bare Bolt, before_response", inline_url),
        ("imageroute", bot_url),
    )
    results: dict[tuple[str, int], list[float]] = {}
    for level in args.levels:
        busy = 0.0
        for _round in range(args.rounds):
            for name, url in targets:
                t0 = time.perf_counter()
                values = measure(url, level, args.waves, args.gap, text)
                results.setdefault((name, level), []).extend(values)
                if url == bot_url:
                    wait_idle(bot_url)
                    busy += time.perf_counter() - t0
        for name, _url in targets:
            print(line(f"{name}, {level} in flight", results[(name, level)]))
        floor, ours = results[("bare Bolt", level)], results[("imageroute", level)]
        inline = results[("bare Bolt, before_response", level)]
        print(
            f"  at {level} in flight imageroute's p99 is {pct(ours, 99) / pct(floor, 99):.2f}x "
            f"the bare Bolt app's (p50 {pct(ours, 50) / pct(floor, 50):.2f}x), "
            f"{pct(ours, 99) / pct(inline, 99):.2f}x the bare app answering before response "
            "(target p99 <= 1.5x at 200)"
        )
        requests = level * (args.waves + 1) * args.rounds
        print(
            f"  the bot's {requests} runs at {level} in flight were done {busy:.1f} s after their "
            f"first request ({requests / busy * 60:.0f} runs a minute; the provider takes "
            f"{PROVIDER_SECONDS:g} s, at most {args.max_in_flight} in flight, "
            f"{args.max_finishing} finishing at once)"
        )


def stats_under_load(args: argparse.Namespace, bot_url: str) -> None:
    """The same acks without, then with, `/imageroute stats` read over and over."""
    text = 'route=busy prompt="s {n}"'
    quiet = measure(bot_url, args.stats_in_flight, args.waves, args.gap, text)
    wait_idle(bot_url)
    reader = subprocess.Popen(
        [sys.executable, __file__, "stats", bot_url, "--every", str(args.stats_every)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(2)  # the reader is reading
        values = measure(bot_url, args.stats_in_flight, args.waves, args.gap, text)
    finally:
        reader.terminate()
        reader.wait()
    print(line(f"imageroute, {args.stats_in_flight} in flight", quiet))
    print(line(f"imageroute, {args.stats_in_flight} in flight + stats", values))
    print(
        f"  (stats read every {args.stats_every:g} s meanwhile: p99 "
        f"{pct(values, 99) / pct(quiet, 99):.2f}x without; target p99 < 50 ms)"
    )
    wait_idle(bot_url)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role")
    p_load = sub.add_parser("load")
    p_load.add_argument("url")
    p_load.add_argument("--in-flight", type=int, default=50)
    p_load.add_argument("--waves", type=int, default=5)
    p_load.add_argument("--gap", type=float, default=1.0)
    p_load.add_argument("--text", default='route=busy prompt="ack {n}"')
    p_load.add_argument("--command", default="/imagegen")
    p_bare = sub.add_parser("bare")
    p_bare.add_argument("port", type=int)
    p_bare.add_argument("api_url")
    p_bare.add_argument("--before-response", action="store_true")
    p_stats = sub.add_parser("stats")
    p_stats.add_argument("url")
    p_stats.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--waves", type=int, default=6)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between waves")
    parser.add_argument("--rounds", type=int, default=2, help="floor/bot alternations per level")
    parser.add_argument(
        "--levels", type=lambda v: [int(x) for x in v.split(",")], default=[50, 200]
    )
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--max-finishing", type=int, default=4)
    parser.add_argument("--stats-db", help="serve this database and read stats during the acks")
    parser.add_argument("--stats-every", type=float, default=0.5)
    parser.add_argument("--stats-in-flight", type=int, default=20)
    return parser.parse_args()


if __name__ == "__main__":
    ns = parse()
    if ns.role == "load":
        asyncio.run(load(ns.url, ns.in_flight, ns.waves, ns.gap, ns.command, ns.text))
    elif ns.role == "bare":
        bare(ns.port, ns.api_url, ns.before_response)
    elif ns.role == "stats":
        asyncio.run(read_stats_forever(ns.url, ns.every))
    else:
        main(ns)
