"""Which models are still served: lifecycle facts from routes/data/lifecycle.toml, as of a date.

The data records what each provider announced (status, shutdown date, replacement, source);
the status the product shows is worked out against a date ("today" unless told), so a shutdown
that passes needs no edit here: a deprecated model becomes retired on its shutdown date.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from routes.errors import ModelRetiredError, RouteError

LifecycleStatus = Literal["current", "deprecated", "retired"]
# The data file's spelling -> the typed status (a lookup, so an unknown word is caught here).
_STATUSES: dict[str, LifecycleStatus] = {
    "current": "current",
    "deprecated": "deprecated",
    "retired": "retired",
}

# What providers answer when a model id is no longer served (OpenAI 404 model_not_found, Google
# 404 NOT_FOUND, Bedrock ResourceNotFound / end of life, a 410 from some gateways).
_GONE_WORDING = re.compile(
    r"model_not_found|not.found|does not exist|no longer (available|supported|served)|"
    r"deprecated|end of (its )?life|shut ?down|discontinued|retired",
    re.IGNORECASE,
)


def today_utc() -> date:
    """The date lifecycle statuses are worked out against by default."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class ModelLifecycle:
    """What a provider announced about one model, with where that was read."""

    model_id: str
    name: str
    provider: str
    announced: LifecycleStatus
    shutdown: date | None
    replacement: str | None
    replacement_kind: str | None
    source: str
    checked: date
    verify: bool = False
    note: str = ""
    aliases: tuple[str, ...] = ()
    aka: str | None = None  # a nickname people also use ("Nano Banana Pro")

    def status(self, today: date | None = None) -> LifecycleStatus:
        """Deprecated until the shutdown date, retired from it on; the announced status when
        no date was given."""
        if self.shutdown is not None:
            return "retired" if (today or today_utc()) >= self.shutdown else "deprecated"
        return self.announced

    def matches(self, model_id: str) -> bool:
        if model_id == self.model_id:
            return True
        return any(fnmatch.fnmatchcase(model_id, alias) for alias in self.aliases)

    @property
    def citation(self) -> str:
        note = ", verify" if self.verify else ""
        return f"source: {self.source}, checked {self.checked.isoformat()}{note}"

    def as_facts(self, today: date | None = None) -> dict[str, Any]:
        """Plain values for callers that must not import routes (the advisor, exports)."""
        forward = forward_model(self.model_id, today)
        return {
            "model_id": self.model_id,
            "name": self.name,
            "provider": self.provider,
            "status": self.status(today),
            "shutdown": self.shutdown.isoformat() if self.shutdown else None,
            "replacement": self.replacement or None,
            "replacement_kind": self.replacement_kind,
            "current_replacement": forward.model_id if forward is not None else None,
            "source": self.source,
            "checked": self.checked.isoformat(),
            "verify": self.verify,
            "note": self.note or None,
            "aka": self.aka,
        }


def _date(value: Any, where: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"lifecycle data: {where}: {value!r} is not a YYYY-MM-DD date") from None


def _row(raw: Mapping[str, Any]) -> ModelLifecycle:
    model_id = str(raw["id"])
    status = _STATUSES.get(str(raw.get("status", "current")))
    if status is None:
        raise ValueError(f"lifecycle data: {model_id}: status must be one of {tuple(_STATUSES)}")
    checked = _date(raw.get("checked"), f"{model_id}.checked")
    if checked is None or not raw.get("source"):
        raise ValueError(f"lifecycle data: {model_id}: every row needs source and checked")
    name = str(raw.get("name") or model_id)
    if any(bracket in name for bracket in "()"):
        # Every surface shows the name beside the id in brackets: one inside would nest.
        raise ValueError(f"lifecycle data: {model_id}: a name has no brackets (a nickname: aka)")
    return ModelLifecycle(
        model_id=model_id,
        name=name,
        provider=str(raw.get("provider", "")),
        announced=status,
        shutdown=_date(raw.get("shutdown"), f"{model_id}.shutdown"),
        replacement=str(raw.get("replacement") or "") or None,
        replacement_kind=raw.get("replacement_kind"),
        source=str(raw["source"]),
        checked=checked,
        verify=bool(raw.get("verify", False)),
        note=str(raw.get("note", "")),
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
        aka=str(raw["aka"]) if raw.get("aka") else None,
    )


@cache
def catalog() -> Mapping[str, ModelLifecycle]:
    """Every model with lifecycle facts on file, by model id."""
    text = resources.files("routes").joinpath("data/lifecycle.toml").read_text(encoding="utf-8")
    rows = [_row(raw) for raw in tomllib.loads(text)["model"]]
    return MappingProxyType({row.model_id: row for row in rows})


def lifecycle_for(model_id: str) -> ModelLifecycle | None:
    """The lifecycle of a model id (a dated snapshot finds its model; a gateway's
    'provider/model' or Vertex's 'publishers/google/models/x' finds x), or None."""
    rows = catalog()
    for candidate in dict.fromkeys((model_id, model_id.rsplit("/", 1)[-1])):
        found = rows.get(candidate)
        if found is not None:
            return found
        for row in rows.values():
            if row.matches(candidate):
                return row
    return None


def forward_model(model_id: str, today: date | None = None) -> ModelLifecycle | None:
    """The current model a retired or deprecated one leads to, following replacements
    (dall-e-3 -> gpt-image-1 -> gpt-image-2); None when the chain names no current model."""
    return _forward(model_id, today)[0]


def _forward(model_id: str, today: date | None) -> tuple[ModelLifecycle | None, str | None]:
    """(the current model the chain leads to, the route kind it needs when that changes)."""
    seen: set[str] = set()
    kind: str | None = None
    row = lifecycle_for(model_id)
    while row is not None and row.model_id not in seen:
        seen.add(row.model_id)
        if row.model_id != model_id and row.status(today) == "current":
            return row, kind
        if not row.replacement:
            return None, None
        kind = row.replacement_kind or kind
        row = lifecycle_for(row.replacement)
    return None, None


def _way_forward(row: ModelLifecycle, today: date | None) -> str:
    forward, kind = _forward(row.model_id, today)
    if forward is None:
        return "the provider names no replacement"
    needs = f' (kind = "{kind}")' if kind else ""
    return f"use {forward.model_id}{needs} instead"


def retired_sentence(model_id: str, today: date | None = None) -> str | None:
    """'imagen-4.0-ultra-generate-001 (Imagen 4 Ultra) was shut down on 2026-08-17; use ...'
    for a retired model, else None."""
    row = lifecycle_for(model_id)
    if row is None or row.status(today) != "retired":
        return None
    when = f" on {row.shutdown.isoformat()}" if row.shutdown else ""
    return f"{model_id} ({row.name}) was shut down{when}; {_way_forward(row, today)}"


def deprecated_sentence(model_id: str, today: date | None = None) -> str | None:
    """'gpt-image-1.5 (GPT Image 1.5) shuts down on 2026-12-01; use gpt-image-2 instead' for a
    deprecated model, else None."""
    row = lifecycle_for(model_id)
    if row is None or row.status(today) != "deprecated":
        return None
    when = f"shuts down on {row.shutdown.isoformat()}" if row.shutdown else "is deprecated"
    return f"{model_id} ({row.name}) {when}; {_way_forward(row, today)}"


@dataclass(frozen=True)
class RouteLifecycleCheck:
    """What loading a route on these models should say: warnings to print, or a refusal."""

    warnings: tuple[str, ...] = ()
    refusal: str | None = None


def check_route(
    route_id: str,
    models: tuple[str, ...],
    *,
    allow_retired: bool,
    today: date | None = None,
) -> RouteLifecycleCheck:
    """One warning line per route naming each deprecated model (a Responses route calls two);
    one refusal line for a retired one unless the route says it keeps calling it
    (allow_retired_model = true, e.g. a private contract)."""
    notes: list[str] = []
    for model_id in models:
        retired = retired_sentence(model_id, today)
        if retired is not None:
            if not allow_retired:
                return RouteLifecycleCheck(
                    refusal=f"route '{route_id}': model {retired}, or set allow_retired_model = "
                    "true if your account still has access (e.g. under a private contract)"
                )
            notes.append(f"model {retired}; kept because allow_retired_model = true")
            continue
        deprecated = deprecated_sentence(model_id, today)
        if deprecated is not None:
            notes.append(f"model {deprecated}")
    if not notes:
        return RouteLifecycleCheck()
    return RouteLifecycleCheck(warnings=(f"route '{route_id}': " + "; ".join(notes),))


def explain_missing_model(
    models: Sequence[str], error: RouteError, today: date | None = None
) -> RouteError:
    """A provider's 'model not found' on a model the data says is retired becomes a
    ModelRetiredError naming the replacement; any other error is returned unchanged."""
    if isinstance(error, ModelRetiredError):
        return error
    gone = error.status_code in (404, 410) or bool(_GONE_WORDING.search(error.message))
    if not gone or error.error_class not in ("bad_request", "auth", "provider_down"):
        return error
    for model_id in models:
        sentence = retired_sentence(model_id, today)
        if sentence is None:
            continue
        retired = ModelRetiredError(
            sentence,
            request_id=error.request_id,
            status_code=error.status_code,
            hint="Change the route's model in the routes file",
        )
        retired.attempts = error.attempts
        return retired
    return error
