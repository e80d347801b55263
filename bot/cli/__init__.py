"""The `imageroute` command: a thin layer over the library.

Each command's module imports what it needs inside the command, so `imageroute --help` loads no
provider SDK, no Slack and no database driver.
"""

from __future__ import annotations

from bot.cli import advise, bench, generate, probes, runlog, serve
from bot.cli.app import app

__all__ = ["advise", "app", "bench", "generate", "main", "probes", "runlog", "serve"]


def main() -> None:
    app()
