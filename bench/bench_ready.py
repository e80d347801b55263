"""Start-up figures, printed (not a test): how long `imageroute serve --http` takes to a healthy
/healthz, and the first `/imagegen` after start against the steady state.

    uv run python bench/bench_ready.py [--starts 3] [--steady 8] [--compare-bytecode]

Each start is a fresh `imageroute serve --http --no-probes` process with one route of every
kind (openai, openai-responses, gateway, google-imagen, gemini-image, bfl, bedrock,
self-hosted, demo) pointed at the strict provider fakes of tests/fakes, the fake Slack Web API,
and a SQLite database migrated beforehand (a restart, not a first install). Timed: spawn to the
first 200 from /healthz; then a signed `/imagegen` on the openai route until its image reaches
Slack (files.completeUploadExternal), the first one and then `--steady` more; and, in another
fresh process, a comparison on openai, gemini and flux likewise. Last, the healthy time of a
start on the embedded demo routes (no provider SDK to load). Every start runs as in the Docker
image: the runtime dependencies only (a virtualenv synced with `--no-dev` beside the bytecode
tree: the test dependencies change what the SDKs import, e.g. httpcore imports trio when it is
installed), PYTHONDONTWRITEBYTECODE set and the modules compiled at build time (here into a
PYTHONPYCACHEPREFIX tree, brought up to date at each run); `--compare-bytecode` also times
starts with only the standard library and the dependencies compiled, as the image was before.
The import floor is timed in the same run: a fresh process of the same image importing only
what such a start imports (the bot's modules, every adapter and the SDKs their clients load),
with the collector paused as `serve` pauses it.
Targets: healthy in under 1.5 s; the first /imagegen within 1.2x the steady state.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_acks import (  # noqa: E402
    BOT_TOKEN,
    LOGS,
    SIGNING_SECRET,
    free_port,
    signed_command,
    spawn,
    stderr_of,
)
from tests.bot.providers import Providers  # noqa: E402
from tests.fakes.google import SDK_ENV_VARS  # noqa: E402
from tests.fakes.slack import SlackFake  # noqa: E402


def environment(tmp: Path, slack: SlackFake) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*SDK_ENV_VARS, "AWS_PROFILE", "AWS_ENDPOINT_URL", "OPENAI_ORG_ID")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        IMAGEROUTE_CONFIG=str(tmp / "imageroute.toml"),
        DATABASE_URL=f"sqlite:///{tmp}/ready.db",
        ASSET_STORE=f"file://{tmp}/assets",
        AWS_ACCESS_KEY_ID="AKIAFAKE",
        AWS_SECRET_ACCESS_KEY="fake",
    )
    return env


def until(check: Callable[[], bool], timeout: float = 120.0, every: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(every)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def one_image(url: str, slack: SlackFake, text: str, images: int, seq: int) -> float:
    """Seconds from sending a signed /imagegen to its last image reaching Slack."""
    before = len(slack.calls("files.completeUploadExternal"))
    body, headers = signed_command("/imagegen", text, seq)
    t0 = time.perf_counter()
    response = httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    until(lambda: len(slack.calls("files.completeUploadExternal")) >= before + images, 60)
    return time.perf_counter() - t0


def start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [env["BENCH_PYTHON"], "-m", "bot", "serve", "--http", "--port", str(port),
               "--host", "127.0.0.1", "--no-probes"]  # fmt: skip
    t0 = time.perf_counter()
    proc = spawn(command, env)
    until(lambda: healthy(url) or proc.poll() is not None)
    if proc.poll() is not None:
        raise SystemExit(stderr_of(proc) or "serve exited")
    return proc, url, time.perf_counter() - t0


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    LOGS.pop(proc.pid).close()


# Where the compiled modules live for each kind of image (PYTHONPYCACHEPREFIX), as the Docker
# image runs: PYTHONDONTWRITEBYTECODE set, so nothing is compiled once and kept at run time.
# "dependencies": the standard library and the installed packages compiled (the image before:
# UV_COMPILE_BYTECODE covers those only); "everything": the project's own modules too (now).
PROJECT_PACKAGES = ("bot", "routes", "advisor", "storage")


def image_python(root: Path) -> str:
    """The interpreter of a virtualenv holding what the Docker image holds: the locked runtime
    dependencies, no test dependencies (the project itself is found on PYTHONPATH)."""
    venv = root / "venv"
    print(f"syncing the runtime dependencies into {venv}...", flush=True)
    subprocess.run(
        ["uv", "sync", "--frozen", "--no-dev", "--no-install-project", "--quiet"],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        check=True,
    )
    return str(venv / "bin" / "python")


def compiled(root: Path, kind: str, python: str) -> Path:
    """A bytecode tree for `kind` under `root`, brought up to date (compileall compiles only
    the files changed since the tree was written: a stale tree would have every start compile
    the changed modules again, as an image without them compiled)."""
    tree = root / kind
    paths = subprocess.run(
        [python, "-c", "import sysconfig; p = sysconfig.get_paths(); "
         "print(p['stdlib']); print(p['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    sources = [paths[0], paths[1]]
    if kind == "everything":
        sources += [str(ROOT / p) for p in PROJECT_PACKAGES]
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"compiling {kind} into {tree} (what changed since the last run)...", flush=True)
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", *sources],
        env=env,
        stdout=subprocess.DEVNULL,
        check=False,  # a few test files of installed packages do not compile: not imported
    )
    return tree


def as_image(env: dict[str, str], tree: Path | None, python: str) -> dict[str, str]:
    out = {**env, "PYTHONDONTWRITEBYTECODE": "1", "BENCH_PYTHON": python}
    if tree is not None:
        out["PYTHONPYCACHEPREFIX"] = str(tree)
    return out


# What a start with a route of every kind imports before it is ready: the bot's own stack as
# `serve` loads it, every adapter, and what the adapters' clients load when they are built
# (routes/openai_common.make_client touches client.images and client.responses).
IMPORTS = """
import gc, time
gc.disable()
t0 = time.perf_counter()
import bot.cli.app, bot.cli.serve, bot.wiring.serve
import routes.demo, routes.openai_images, routes.openai_responses, routes.gateway
import routes.google_imagen, routes.gemini_image, routes.bfl, routes.bedrock, routes.self_hosted
import openai.resources.images, openai.resources.responses, boto3, botocore.config
print(time.perf_counter() - t0, flush=True)
"""


def import_floor(env: dict[str, str], times: int) -> tuple[list[float], list[float]]:
    """Seconds a fresh process of the image takes to import what a start imports: from spawn
    to the end of its imports (interpreter start-up included; not its exit), and the imports
    alone."""
    walls, imports = [], []
    for _ in range(times):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [env["BENCH_PYTHON"], "-c", IMPORTS],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        walls.append(time.perf_counter() - t0)
        _out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(err[-2000:])
        imports.append(float(line))
    return walls, imports


def healthy_after(env: dict[str, str], starts: int) -> list[float]:
    ready = []
    for _ in range(starts):
        proc, _url, took = start(env)
        ready.append(took)
        stop(proc)
    return ready


def main(starts: int, steady: int, pycache: Path, compare: bool) -> None:
    slack = SlackFake()
    slack.token = BOT_TOKEN  # auth.test answers this token only
    slack.start()
    providers = Providers()
    seq = 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "imageroute.toml").write_text(providers.config(), encoding="utf-8")
        base = environment(tmp, slack)
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=base, check=True,
                       capture_output=True)  # fmt: skip
        python = image_python(pycache)
        images = {kind: compiled(pycache, kind, python) for kind in ("dependencies", "everything")}
        env = as_image(base, images["everything"], python)
        demo = {k: v for k, v in env.items() if k != "IMAGEROUTE_CONFIG"}
        print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores, shared)")
        print("bytecode as in the image: the project's modules compiled at build time")
        for label, text, count in (
            ("/imagegen on openai", 'route=openai prompt="a red kite {n}"', 1),
            ("comparison openai,gemini,flux", 'route=openai,gemini,flux prompt="kites {n}"', 4),
        ):
            ready, firsts, steadies = [], [], []
            for _ in range(starts):
                proc, url, took = start(env)
                ready.append(took)
                try:
                    seq += 1
                    firsts.append(one_image(url, slack, text.format(n=seq), count, seq))
                    for _ in range(steady):
                        seq += 1
                        steadies.append(one_image(url, slack, text.format(n=seq), count, seq))
                finally:
                    stop(proc)
            first, steady_s = statistics.median(firsts), statistics.median(steadies)
            print(
                f"serve --http (a route of every kind) healthy after: median "
                f"{statistics.median(ready):.2f} s, max {max(ready):.2f} s over {starts} starts "
                "(target < 1.5 s)"
            )
            print(
                f"{label}: first after start median {first * 1000:.0f} ms, steady median "
                f"{steady_s * 1000:.0f} ms: {first / steady_s:.2f}x (target <= 1.2x)"
            )
        ready = healthy_after(demo, starts)
        print(
            f"serve --http on the embedded demo routes healthy after: median "
            f"{statistics.median(ready):.2f} s, max {max(ready):.2f} s (target < 1.5 s)"
        )
        walls, imports = import_floor(env, starts)
        print(
            "import floor (a process importing only what a start with a route of every kind "
            f"imports): spawn to imports done median {statistics.median(walls):.2f} s, "
            f"the imports alone {statistics.median(imports):.2f} s"
        )
        if compare:
            # The image before against now, in this run: the same starts, with only the
            # dependencies compiled (each start compiles the project's modules again).
            for name, config in (("a route of every kind", base), ("the demo routes", None)):
                runs = {}
                for kind, tree in images.items():
                    image = as_image(base, tree, python)
                    if config is None:
                        image.pop("IMAGEROUTE_CONFIG")
                    runs[kind] = statistics.median(healthy_after(image, starts))
                print(
                    f"healthy after, {name}: project compiled at build {runs['everything']:.2f} s,"
                    f" compiled at every start {runs['dependencies']:.2f} s "
                    f"({runs['dependencies'] / runs['everything']:.2f}x)"
                )
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        assert not providers.rejections(), providers.rejections()
    providers.stop()
    slack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--steady", type=int, default=8)
    parser.add_argument(
        "--pycache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "imageroute-bench-bytecode",
        help="where the compiled modules are kept between runs",
    )
    parser.add_argument(
        "--compare-bytecode",
        action="store_true",
        help="also time starts with the project compiled at every start (the image before)",
    )
    args = parser.parse_args()
    main(args.starts, args.steady, args.pycache, args.compare_bytecode)
