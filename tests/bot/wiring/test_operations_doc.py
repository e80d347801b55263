"""docs/operations.md and the README's settings table say what the code does: every setting is
listed with its real default, and the liveness figures are the ones the sweep uses."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core.workers import STALE_BEATS, SWEEP_BEATS
from bot.wiring.settings import Settings

REPO = Path(__file__).parents[3]
NUMBERS = {3: "three", 4: "four"}


def _table_defaults(text: str) -> dict[str, str]:
    """`| `NAME` | meaning | `default` |` rows of a Markdown table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \|[^|]*\| ([^|]*?) \|$", text, re.MULTILINE)
    return {name: default.strip("`") for name, default in rows}


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    readme = _table_defaults((REPO / "README.md").read_text("utf-8"))
    for name in Settings.model_fields:
        assert name.upper() in readme, f"{name.upper()} is missing from the README's settings"
    for name in ("imageroute_drain_seconds", "imageroute_heartbeat_seconds"):
        default = Settings.model_fields[name].default
        assert float(readme[name.upper()]) == default, name
    assert readme["IMAGEROUTE_SPOOL"] == f"./{Settings.model_fields['imageroute_spool'].default}"


def test_operations_doc_figures_are_the_code_s() -> None:
    doc = (REPO / "docs" / "operations.md").read_text("utf-8")
    defaults = _table_defaults(doc)
    beat = Settings.model_fields["imageroute_heartbeat_seconds"].default
    drain = Settings.model_fields["imageroute_drain_seconds"].default
    assert float(defaults["IMAGEROUTE_HEARTBEAT_SECONDS"]) == beat
    assert float(defaults["IMAGEROUTE_DRAIN_SECONDS"]) == drain
    stale, sweep = beat * STALE_BEATS, beat * SWEEP_BEATS
    assert f"older than {NUMBERS[STALE_BEATS]}\n  beats ({stale:g} s)" in doc
    assert f"Every {NUMBERS[SWEEP_BEATS]} beats ({sweep:g} s)" in doc
    assert f"within about {stale + sweep:g} s" in doc
