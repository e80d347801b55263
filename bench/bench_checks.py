"""Acceptance-check figures (not a test): time per check on a 1024x1024 image, memory the checks
add to a process, how long the event loop waits while they run, and how well each check
separates good outputs from degraded ones on the calibration set.

    uv run python bench/bench_checks.py [--repeat 5]

Goal: every check for one image under 1.5 s on a 2-core machine, OCR included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routes.config import CheckSettings

SETTINGS = CheckSettings()


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (Linux /proc)."""
    fields = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def timed(check: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(first call, median wall time of the next `repeat`, median CPU time of those) in
    seconds. CPU time counts every thread of the process (ONNX Runtime uses both cores), so it
    does not grow when other work shares the machine the way wall time does."""
    t0 = time.perf_counter()
    check()
    first = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        check()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return first, statistics.median(walls), statistics.median(cpus)


async def loop_lag(work: Callable[[], object], runs: int) -> float:
    """The longest the event loop waited past a 10 ms tick while `work` ran in the checks'
    worker thread (as the bot runs it)."""
    pool = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - t0 - 0.01)

    ticker = asyncio.create_task(tick())
    for _ in range(runs):
        await loop.run_in_executor(pool, work)
    done = True
    await ticker
    pool.shutdown()
    return worst


def main(repeat: int) -> None:
    before, _ = rss_mb()
    from bot.checks.delivery import delivery_check
    from bot.checks.edit import edit_check
    from bot.checks.model import Ask
    from bot.checks.pictures import open_image
    from bot.checks.repeat import fingerprint, similarity
    from bot.checks.text import text_check
    from bot.checks.transparency import transparency_check
    from tests.bot.checks import calibration as cal

    poster = cal.poster()
    poster_png = cal.png(poster)
    case = cal.edit_case()
    edit_out = open_image(case.output)
    sticker = open_image(cal.png(cal.cutout(size=1024)))
    earlier = cal.poster(seed=2)
    ask = Ask(texts=cal.POSTER_TEXT, size="1024x1024", output_format="png", n=1)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print("\n== time per check, 1024x1024 image (first call includes loading; then median) ==")
    checks: dict[str, Callable[[], object]] = {
        "text (OCR)": lambda: text_check(poster, cal.POSTER_TEXT, SETTINGS.text_min_accuracy),
        "edit (SSIM, mask)": lambda: edit_check(edit_out, case.source, case.mask, SETTINGS),
        "transparency": lambda: transparency_check(sticker, SETTINGS.transparency_min_share),
        "delivery": lambda: delivery_check([poster_png], ask),
        "repeat (pHash)": lambda: similarity(fingerprint(poster), fingerprint(earlier)),
    }
    medians, cpu = {}, {}
    for label, check in checks.items():
        first, median, cpu[label] = timed(check, repeat)
        medians[label] = median
        print(
            f"{label:<20} first {first:6.3f} s   median {median:6.3f} s   CPU {cpu[label]:6.3f} s"
        )
    total = sum(medians.values())
    print(
        f"{'all five, one image':<20} {total:6.3f} s wall, {sum(cpu.values()):.3f} s CPU "
        "(sums of medians; goal < 1.5 s wall)"
    )
    after, peak = rss_mb()
    print("\n== memory ==")
    print(
        f"resident before the checks {before:.0f} MB, after {after:.0f} MB "
        f"(+{after - before:.0f} MB), peak {peak:.0f} MB"
    )

    def everything() -> None:
        for check in checks.values():
            check()

    lag = asyncio.run(loop_lag(everything, 3))
    print("\n== the event loop while checks run in their worker thread ==")
    print(f"longest wait past a 10 ms tick over 3 full check passes: {lag * 1000:.0f} ms")

    print("\n== separation on the calibration set (pass marks: routes file defaults) ==")
    print(f"text, character accuracy (pass >= {SETTINGS.text_min_accuracy:.0%}):")
    variants = {
        "clean": poster,
        "blurred (radius 9)": cal.blurred(poster),
        "speckle 20%": cal.noisy(poster, coverage=0.2),
        "speckle 40%": cal.noisy(poster, coverage=0.4),
        "speckle 60%": cal.noisy(poster, coverage=0.6),
        "letters swapped": cal.poster(cal.swap_letters(cal.POSTER_LINES)),
        "words dropped": cal.poster(cal.drop_words(cal.POSTER_LINES)),
        "no text": cal.poster(()),
    }
    for name, image in variants.items():
        result = text_check(image, cal.POSTER_TEXT, SETTINGS.text_min_accuracy)
        print(f"  {name:<20} {result.score or 0:6.1%}  {result.status}")
    print(
        f"edit, SSIM (pass: kept outside >= {SETTINGS.edit_min_kept_outside_mask:.0%}, "
        f"changed inside >= {SETTINGS.edit_min_changed_inside_mask:.0%}):"
    )
    for name, kwargs in (
        ("inside only", {}),
        ("inside, JPEG round trip", {"recompressed": True}),
        ("inside and outside", {"outside_too": True}),
    ):
        c = cal.edit_case(**kwargs)
        with_mask = edit_check(open_image(c.output), c.source, c.mask, SETTINGS)
        overall = edit_check(open_image(c.output), c.source, None, SETTINGS)
        print(
            f"  {name:<24} kept outside {with_mask.detail['kept_outside']:.3f}  "
            f"changed inside {with_mask.detail['changed_inside']:.3f}  "
            f"overall {overall.detail['kept_overall']:.3f}  {with_mask.status}"
        )
    unchanged = edit_check(open_image(case.source), case.source, case.mask, SETTINGS)
    print(
        f"  {'nothing changed':<24} kept outside {unchanged.detail['kept_outside']:.3f}  "
        f"changed inside {unchanged.detail['changed_inside']:.3f}  {unchanged.status}"
    )
    print("transparency:")
    for name, picture in (
        ("hard cut-out", cal.cutout()),
        ("anti-aliased cut-out", cal.antialiased_cutout()),
        ("feathered cut-out", cal.cutout(soft=True)),
        ("flattened copy", cal.flattened_copy(cal.cutout())),
        ("RGBA, nothing cut out", cal.opaque_rgba(cal.cutout())),
    ):
        result = transparency_check(open_image(cal.png(picture)), SETTINGS.transparency_min_share)
        print(f"  {name:<24} {result.summary:<40} {result.status}")
    print(f"repeat, pHash similarity (pass >= {SETTINGS.repeat_min_similarity:.0%}):")
    for name, other in (
        ("same picture re-encoded", open_image(poster_png)),
        ("speckle 20%", cal.noisy(poster, coverage=0.2)),
        ("same text, other layout", cal.poster(seed=5)),
        ("unrelated picture", cal.product_photo()),
    ):
        print(f"  {name:<24} {similarity(fingerprint(poster), fingerprint(other)):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args().repeat)
