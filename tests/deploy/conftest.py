"""The deployment files under deploy/, read once per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((DEPLOY / relative).read_text(encoding="utf-8"))


def load_all(relative: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((DEPLOY / relative).read_text(encoding="utf-8"))
    return [doc for doc in docs if doc]
