"""Model lifecycle facts handed to the advisor, and how a board row's model resolves through them.

The route board names the models of its source article (May 2026). Providers shut models down
since, so the advisor never names a model directly: each row names the article's model id, and
that id is followed through `ModelFact.replacement` to the model that is current today. The
facts are plain values: the bot hands in its live catalog; the board ships a small dated default
set, used only when the caller hands none in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

ModelStatus = Literal["current", "deprecated", "retired"]
MODEL_STATUSES: tuple[ModelStatus, ...] = ("current", "deprecated", "retired")

# Bounds a replacement chain, so a cycle in handed-in facts cannot loop.
_MAX_HOPS = 8
# Provider ids as the routes data spells them, shown as people write them.
_PROVIDER_NAMES = {
    "openai": "OpenAI",
    "google": "Google",
    "bfl": "Black Forest Labs",
    "amazon": "Amazon",
    "stability": "Stability AI",
}


@dataclass(frozen=True, slots=True)
class ModelFact:
    """What is known about one model id: its status, shutdown date and named replacement.

    `source` and `checked` say where the fact comes from and when it was last confirmed;
    `provider` is the company that announces the model's lifecycle ("Google"), used in the
    one-line explanation when the advisor names a different model than the article did.
    """

    model_id: str
    name: str
    status: ModelStatus = "current"
    shutdown: date | None = None
    replacement: str | None = None
    source: str = ""
    checked: date | None = None
    provider: str = ""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The model a board row names today, and why it differs from the article's, if it does."""

    article_id: str
    model_id: str
    name: str
    status: ModelStatus | None  # None: no fact about this id was handed in
    change: str  # one line; "" when the article's model is still current
    facts: tuple[ModelFact, ...]  # the chain followed, article's model first

    @property
    def label(self) -> str:
        """How answers name the model: "Gemini 3 Pro Image (`gemini-3-pro-image`)"."""
        return f"{self.name} (`{self.model_id}`)" if self.name != self.model_id else self.model_id


def resolve(model_id: str, facts: Mapping[str, ModelFact]) -> ResolvedModel:
    """Follow replacements from `model_id` until a model that is not deprecated or retired."""
    chain: list[ModelFact] = []
    current = model_id
    seen: set[str] = set()
    while current not in seen and len(chain) < _MAX_HOPS:
        seen.add(current)
        fact = facts.get(current)
        if fact is None:
            break
        chain.append(fact)
        if fact.status == "current" or not fact.replacement:
            break
        current = fact.replacement
    last = chain[-1] if chain else None
    if last is None:
        return ResolvedModel(model_id, model_id, model_id, None, "", ())
    if last.model_id != current:
        # The chain ends on a replacement nobody described: name it by its id.
        return ResolvedModel(
            model_id, current, current, None, _change(chain, current, current), tuple(chain)
        )
    change = _change(chain, last.model_id, last.name) if len(chain) > 1 else _lone(last)
    return ResolvedModel(model_id, last.model_id, last.name, last.status, change, tuple(chain))


def _change(chain: list[ModelFact], model_id: str, name: str) -> str:
    """ "The article named Imagen 4 Ultra; Google shut it down on 2026-08-17 and names Gemini 3
    Pro Image as its replacement." """
    first = chain[0]
    who = _provider(first.provider)
    when = f" on {_day(first.shutdown)}" if first.shutdown else ""
    if first.status == "retired":
        verb = f"{who} shut it down{when}"
    else:
        verb = f"{who} is retiring it{when}" if when else f"{who} has deprecated it"
    target = name if name == model_id else f"{name} (`{model_id}`)"
    if len(chain) > 2 or (len(chain) == 2 and chain[1].model_id != model_id):
        return f"The article named {first.name}; {verb}, and its replacement today is {target}."
    return f"The article named {first.name}; {verb} and names {target} as its replacement."


def _provider(provider: str) -> str:
    if not provider:
        return "Its provider"
    return _PROVIDER_NAMES.get(provider.casefold(), provider)


def _day(value: date | str) -> str:
    # Facts built from serialised data may carry the ISO string rather than a date.
    return value.isoformat() if isinstance(value, date) else str(value)


def _lone(fact: ModelFact) -> str:
    """A model with no replacement to follow: say plainly that it is going or gone."""
    when = f" on {_day(fact.shutdown)}" if fact.shutdown else ""
    if fact.status == "retired":
        return f"{fact.name} was shut down{when} and no replacement is named: pick a current model."
    if fact.status == "deprecated":
        return f"{fact.name} is deprecated{' (shutdown' + when + ')' if when else ''}."
    return ""


class _ModelLabels:
    """`{m[<model id>]}` in a board text: that model's label as resolved today."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def __getitem__(self, model_id: str) -> str:
        return self._catalog.model(model_id).label


class Catalog:
    """The board rows' models resolved through one set of facts, and board texts rendered
    with them. Built once per set of facts (the default set is cached by the caller)."""

    def __init__(self, facts: Mapping[str, ModelFact], row_models: Mapping[str, str]) -> None:
        self.facts = facts
        self._resolved: dict[str, ResolvedModel] = {}
        self.rows = {
            route: self.model(model_id) for route, model_id in row_models.items() if model_id
        }
        self._labels = _ModelLabels(self)
        self._base: dict[str, object] = {"m": self._labels}
        self._base.update((row, resolved.label) for row, resolved in self.rows.items())
        self._rendered: dict[tuple[str, str | None], str] = {}

    def model(self, model_id: str) -> ResolvedModel:
        found = self._resolved.get(model_id)
        if found is None:
            found = self._resolved[model_id] = resolve(model_id, self.facts)
        return found

    def render(self, template: str, route: str | None = None) -> str:
        """A board text with its placeholders filled: {model} is `route`'s model."""
        key = (template, route)
        done = self._rendered.get(key)
        if done is None:
            own = self.rows.get(route or "")
            values = dict(self._base)
            values["model"] = own.label if own else ""
            values["model_name"] = own.name if own else ""
            values["model_id"] = own.model_id if own else ""
            done = self._rendered[key] = template.format_map(values)
        return done
