"""The `imageroute` command: a thin layer over the library.

Each command's module imports what it needs inside the command, so `imageroute --help` loads no
provider SDK, no Slack and no database driver.
"""

from __future__ import annotations

from bot.cli.app import app

# Each module adds its commands to `app`; `imageroute --help` lists them in this order.
# isort: off
from bot.cli import serve, probes, generate, runlog, advise, bench, doctor
# isort: on

__all__ = ["advise", "app", "bench", "doctor", "generate", "main", "probes", "runlog", "serve"]


def main() -> None:
    app()
