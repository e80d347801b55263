"""The garbage collector's full-collection pause in a ready `serve` process, printed (not a
test): with what start-up built walked again at each full collection (as before) and frozen
out of it (as `serve` and `prober` do once ready, bot.wiring.serve.settled).

    uv run python bench/bench_gc.py [--repeat 5]

Start-up is reproduced as `serve` does it with a route of every kind: the bot's modules, every
provider SDK and an OpenAI client's resources. A full collection stops every thread, the event
loop answering Slack included, for as long as it takes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pauses(repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gc.collect()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(repeat: int) -> None:
    gc.disable()
    import boto3
    import google.genai  # noqa: F401
    import openai

    import bot.wiring.serve  # noqa: F401
    import routes.registry  # noqa: F401

    client = openai.AsyncOpenAI(api_key="not-needed")
    _ = client.images, client.responses
    boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    gc.enable()
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    print(f"objects the collector tracks after start-up: {len(gc.get_objects()):,}")
    walked = pauses(repeat)
    gc.freeze()
    frozen = pauses(repeat)
    print(
        f"full collection, start-up objects walked: median {statistics.median(walked):.1f} ms, "
        f"max {max(walked):.1f} ms"
    )
    print(
        f"full collection, start-up objects frozen: median {statistics.median(frozen):.2f} ms, "
        f"max {max(frozen):.2f} ms ({gc.get_freeze_count():,} objects frozen)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args().repeat)
