"""The benchmark report page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) opens summary.html from disk, sorts the route x family
table by clicking its headers, shows every route's outputs side by side with their checks, and
prints the same counts as the terminal. No network: the page is one file plus its images/."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.benchmark.plan import BenchPlan
from bot.benchmark.report import build_report, count_outputs, write_report
from tests.conftest import RuntimeOpener

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ROUTES = ("demo", "slow", "broken")
CONFIG = """
[routes.demo]
kind = "demo"
billing_owner = "Demo team"

[routes.slow]
kind = "demo"
delay_seconds = 0.05
pricing = { usd_per_image = 0.04 }

[routes.broken]
kind = "gateway"
model = "acme/image-1"
api_key = "gw-test-key"
base_url = "http://127.0.0.1:9/v1"
retries = 0
timeout_seconds = 5
"""

if CHROMIUM is None or CHROMEDRIVER is None:
    # CI installs both (.ci/run): there a missing browser is a failure, not a skip.
    if os.environ.get("CI"):
        raise RuntimeError("the report page test needs Debian's chromium and chromium-driver")
    pytest.skip("needs chromium and chromium-driver (apt-get install)", allow_module_level=True)


def _browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which would download one) is never used.
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def _column(driver: Any, index: int) -> list[str]:
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('#summary tbody tr'))"
            ".map(r => r.cells[arguments[0]].dataset.sort)",
            index,
        )
    )


def _numbers_then_blanks(values: list[str], descending: bool) -> bool:
    numbers = [float(v) for v in values if v != ""]
    blanks_last = all(v == "" for v in values[len(numbers) :])
    return blanks_last and numbers == sorted(numbers, reverse=descending)


def _browse(page: Path, profile: Path, screenshot: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    driver = _browser(profile)
    try:
        driver.get(page.as_uri())
        seen: dict[str, Any] = {"title": driver.title}
        seen["counts"] = driver.find_element(By.ID, "counts").text
        seen["rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#summary tbody tr"))
        seen["images_loaded"] = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        heads = driver.find_elements(By.CSS_SELECTOR, "#summary thead th")
        labels = [h.text.strip() for h in heads]
        p50 = labels.index("p50")
        heads[p50].click()
        seen["p50_up"] = _column(driver, p50)
        seen["p50_sort"] = heads[p50].get_attribute("aria-sort")
        heads[p50].click()
        seen["p50_down"] = _column(driver, p50)
        heads[labels.index("route")].click()
        seen["routes_up"] = _column(driver, 0)
        seen["families"] = [
            e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "section[id]")
        ]
        seen["poster_cards"] = [
            c.text for c in driver.find_elements(By.CSS_SELECTOR, "#family-poster .card")
        ]
        seen["failures"] = driver.find_element(By.ID, "failures").text
        seen["errors"] = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        driver.save_screenshot(str(screenshot))
        return seen
    finally:
        driver.quit()


async def test_the_report_page_in_headless_chromium(open_runtime: RuntimeOpener, tmp_path: Path):
    runtime = open_runtime(CONFIG)
    runner = runtime.bench_runner()
    row, _plan, items = runner.open(
        BenchPlan(routes=ROUTES, families=("poster", "edge")), source="cli"
    )
    progress = await runner.run(items, bench_id=row.id)
    demo_run = next(r for i, r in progress.outcomes if i.route_id == "demo" and r.id)
    assert demo_run.id is not None
    runtime.runlog.set_verdict(demo_run.id, True, "U0REVIEWER")
    report = build_report(progress, runtime.runlog, runtime.assets, ROUTES, runtime.checks.checklog)
    write_report(report, tmp_path / "report")
    screenshot = Path(os.environ.get("IMAGEROUTE_REPORT_SCREENSHOT") or tmp_path / "page.png")

    seen = await asyncio.to_thread(
        _browse, tmp_path / "report" / "summary.html", tmp_path / "profile", screenshot
    )

    assert seen["title"] == f"Benchmark {row.id}"
    # The same sentence the terminal prints at the end of `imageroute bench`.
    assert seen["counts"] == count_outputs(progress).sentence() + "."
    assert "failed" in seen["counts"] and "refused before any call" in seen["counts"]
    assert seen["rows"] == len(report.cells) == len(ROUTES) * 2
    assert seen["images_loaded"] and all(seen["images_loaded"])
    assert seen["p50_sort"] == "ascending"
    assert _numbers_then_blanks(seen["p50_up"], descending=False)
    assert _numbers_then_blanks(seen["p50_down"], descending=True)
    assert seen["p50_up"] != seen["p50_down"]
    assert seen["routes_up"] == sorted(seen["routes_up"])
    assert {"family-poster", "family-edge", "failures"} <= set(seen["families"])
    # Poster family: two prompts x three routes, each card with its checks, cost and latency.
    cards = seen["poster_cards"]
    assert len(cards) == 6
    assert sum("text " in c for c in cards) == 4  # the two demo routes' outputs
    assert all("run #" in c for c in cards)
    assert sum("connection" in c.lower() or "network" in c.lower() for c in cards) >= 2
    assert "unsupported" in seen["failures"] and "broken" in seen["failures"]
    assert seen["errors"] == []
    assert screenshot.read_bytes().startswith(b"\x89PNG")
