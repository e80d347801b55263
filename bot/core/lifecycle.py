"""Model lifecycle where this workspace meets it: route model statuses and the advisor's facts.

routes.lifecycle reads what providers announced (routes/data/lifecycle.toml); this module turns it
into what the product shows: one status per model a route calls (`/imageroute routes`, App
Home, `imageroute doctor`), and the live catalog the advisor is handed (`advisor.ModelFact`),
converted here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from advisor import ModelFact
from routes.config import RouteConfigBase
from routes.lifecycle import catalog, forward_model, lifecycle_for, today_utc

ShownStatus = Literal["current", "deprecated", "retired", "unknown"]


@dataclass(frozen=True)
class ModelStatus:
    """One model a route calls, as of a day: its status, date and way forward, as data (any
    surface renders it; `label` is the short text Slack and the terminal use)."""

    route_id: str
    model_id: str
    name: str
    status: ShownStatus  # unknown: no lifecycle on file for this id
    shutdown: date | None = None
    replacement: str | None = None  # the current model the provider's chain leads to
    replacement_kind: str | None = None  # set when the replacement needs another route kind
    allowed_retired: bool = False  # the route keeps calling it (allow_retired_model = true)
    source: str = ""
    checked: date | None = None
    verify: bool = False

    @property
    def needs_attention(self) -> bool:
        return self.status in ("deprecated", "retired")

    @property
    def label(self) -> str:
        """ "current", "deprecated: shuts down 2026-12-01; use gpt-image-2",
        "retired on 2026-08-17, kept by allow_retired_model; use gemini-3-pro-image"."""
        way = ""
        if self.replacement:
            kind = f' (kind = "{self.replacement_kind}")' if self.replacement_kind else ""
            way = f"; use {self.replacement}{kind}"
        elif self.needs_attention:
            way = "; no replacement named"
        when = self.shutdown.isoformat() if self.shutdown else None
        if self.status == "deprecated":
            return f"deprecated: shuts down {when}{way}" if when else f"deprecated{way}"
        if self.status == "retired":
            kept = ", kept by allow_retired_model" if self.allowed_retired else ""
            return f"retired{' on ' + when if when else ''}{kept}{way}"
        if self.status == "unknown":
            return "no lifecycle on file"
        return "current"


def model_status(
    route_id: str, model_id: str, *, allowed_retired: bool = False, today: date | None = None
) -> ModelStatus:
    """The status of one model id as of `today` (default: today, UTC)."""
    row = lifecycle_for(model_id)
    if row is None:
        return ModelStatus(route_id, model_id, model_id, "unknown")
    status = row.status(today)
    forward = forward_model(row.model_id, today) if status != "current" else None
    return ModelStatus(
        route_id=route_id,
        model_id=model_id,
        name=row.name,
        status=status,
        shutdown=row.shutdown,
        replacement=forward.model_id if forward is not None else None,
        replacement_kind=row.replacement_kind if forward is not None else None,
        allowed_retired=allowed_retired,
        source=row.source,
        checked=row.checked,
        verify=row.verify,
    )


def route_model_statuses(
    config: RouteConfigBase, today: date | None = None
) -> tuple[ModelStatus, ...]:
    """One status per provider model the route calls (none for the demo and self-hosted
    routes, whose models have no provider lifecycle)."""
    return tuple(
        model_status(config.id, model_id, allowed_retired=config.allow_retired_model, today=today)
        for model_id in dict.fromkeys(config.lifecycle_models())
    )


def statuses_text(statuses: Sequence[ModelStatus]) -> str:
    """One short text for a route's models: "current", or each model that needs a move named
    with its label ("no provider lifecycle" for the demo and self-hosted routes)."""
    if not statuses:
        return "no provider lifecycle"
    if len(statuses) == 1:
        return statuses[0].label
    moving = [s for s in statuses if s.needs_attention]
    if not moving:
        return "; ".join(f"{s.model_id} {s.label}" for s in statuses)
    return "; ".join(f"{s.model_id} {s.label}" for s in moving)


def model_facts(today: date | None = None) -> dict[str, ModelFact]:
    """The lifecycle catalog as the advisor takes it: every model on file, its status as of
    `today`, and the replacement the provider named."""
    day = today or today_utc()
    return {
        model_id: ModelFact(
            model_id=model_id,
            name=row.name,
            status=row.status(day),
            shutdown=row.shutdown,
            replacement=row.replacement,
            source=row.source,
            checked=row.checked,
            provider=row.provider,
        )
        for model_id, row in catalog().items()
    }
