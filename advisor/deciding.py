"""Turns the evidence read from a question into Advice: scores, resolution, caveats, wording."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.advice import (
    Advice,
    Alternative,
    Caveat,
    Counted,
    MatchedSignal,
    MatchKind,
    WorkspaceRoute,
)
from advisor.board import Board, BoardRow, load_board
from advisor.reading import Evidence, matcher, read


@dataclass(frozen=True, slots=True)
class _Point:
    label: str
    weight: int
    quote: str
    negated_by: str | None
    names_provider: bool
    model_name: bool


@dataclass(slots=True)
class _Tally:
    """Evidence for and against one board row; synonyms (same label) count once."""

    route: str
    order: int
    points_for: dict[str, _Point] = field(default_factory=dict)
    points_against: dict[str, _Point] = field(default_factory=dict)
    bonus: int = 0
    # Set when this row's provider names were listed as targets of a gateway need.
    absorbed: bool = False

    def counted(self) -> list[_Point]:
        return [p for p in self.points_for.values() if not (self.absorbed and p.names_provider)]

    def add(self, point: _Point, supports: bool) -> None:
        target = self.points_for if supports else self.points_against
        target.setdefault(point.label, point)

    def positive(self, weak_cap: int) -> int:
        points = self.counted()
        strong = sum(p.weight for p in points if p.weight >= 2)
        weak = sum(p.weight for p in points if p.weight < 2)
        return strong + min(weak, weak_cap) + self.bonus

    def negative(self) -> int:
        # A label said both ways ("not on GCP yet, but moving to GCP") counts as said.
        return sum(p.weight for k, p in self.points_against.items() if k not in self.points_for)

    def net(self, weak_cap: int) -> int:
        return self.positive(weak_cap) - self.negative()

    def strongest(self) -> int:
        return max((p.weight for p in self.counted()), default=0)

    def ruled_out(self, weak_cap: int) -> bool:
        # Only a clear statement rules a row out; a negated hint ("no assistant involved")
        # just weakens it.
        strong_against = any(
            p.weight >= 2 for k, p in self.points_against.items() if k not in self.points_for
        )
        return strong_against and self.net(weak_cap) <= 0

    def names_something(self) -> bool:
        """The question named this row's provider, platform or model, not just its job."""
        return any(p.names_provider or p.model_name for p in self.counted())

    def platform_strength(self) -> int:
        """Strongest signal that is not just a model name: "we are on OpenAI", not "GPT Image 2"."""
        return max((p.weight for p in self.counted() if not p.model_name), default=0)

    def names_provider(self) -> bool:
        return any(p.names_provider for p in self.points_for.values())


# A pasted wall of text can match thousands of times; the answer only needs to show the gist.
_MAX_MATCHED = 100


def advise(question: str, workspace: Sequence[WorkspaceRoute] = ()) -> Advice:
    """Advice for `question` from the route board; pure and deterministic, never raises on text.

    An empty or off-topic question gets the board's default (openai, GPT Image 2) flagged
    `is_default=True`. `workspace` is the configured routes with their run-log numbers; the
    ones serving the recommended row (and each alternative's row) are passed through.
    """
    board = load_board()
    reading = read(question)
    detectors = matcher().detectors
    tallies = {row.id: _Tally(route=row.id, order=i) for i, row in enumerate(board.rows)}
    fired_caveats: dict[str, list[Evidence]] = {}
    fired_notes: dict[str, list[Evidence]] = {}
    matched: list[MatchedSignal] = []

    for item in reading.evidence:
        kind, index = detectors[item.detector].owner
        if kind == "signal":
            signal = board.signals[index]
            point = _Point(
                signal.label,
                signal.weight,
                item.quote,
                item.negated_by,
                signal.names_provider,
                signal.model_name,
            )
            tallies[signal.route].add(point, item.supports)
            matched.append(_matched(item, signal.label, "route", signal.route, signal.weight))
        elif kind == "caveat":
            caveat_id = board.caveats[index].id
            if item.supports:
                fired_caveats.setdefault(caveat_id, []).append(item)
            matched.append(_matched(item, caveat_id, "caveat", None, 0))
        else:
            note_id = board.notes[index].id
            if item.supports:
                fired_notes.setdefault(note_id, []).append(item)
            matched.append(_matched(item, note_id, "note", None, 0))

    for caveat_id, items in fired_caveats.items():
        support = board.caveat(caveat_id).supports
        if support is not None:
            first = items[0]
            point = _Point(support.label, support.weight, first.quote, None, False, False)
            tallies[support.route].add(point, True)

    cap = board.weak_cap
    enumeration = _enumeration_bonus(board, tallies)
    transparency = "transparency" in fired_caveats
    ranked = sorted(
        (t for t in tallies.values() if t.net(cap) > 0),
        key=lambda t: (-t.net(cap), -t.strongest(), not t.names_something(), t.order),
    )
    set_aside: list[_Tally] = []
    if transparency:
        # GPT Image 2 cannot output alpha: OpenAI stays a candidate only when the team is
        # explicitly on the OpenAI platform, never on job hints, a model name or the default.
        openai = tallies["openai"]
        if openai in ranked and openai.platform_strength() < 3:
            ranked.remove(openai)
            set_aside.append(openai)
    ruled_out = [t.route for t in tallies.values() if t.ruled_out(cap)]

    route: str | None
    is_default = False
    if ranked and ranked[0].net(cap) >= board.min_score:
        route = ranked[0].route
    elif transparency:
        route = None
    else:
        route = next((r for r in board.fallback_order if r not in ruled_out), board.default_route)
        is_default = True

    caveats = tuple(
        Caveat(id=spec.id, title=spec.title, text=spec.text)
        for spec in board.caveats
        if spec.id in fired_caveats
    )
    alternatives = _alternatives(board, route, ranked, ruled_out, transparency, workspace, cap)
    why = _why(
        board,
        question,
        route,
        is_default,
        ranked,
        tallies,
        set_aside,
        ruled_out,
        enumeration,
        fired_caveats,
        cap,
    )
    notes = _notes(board, route, alternatives, tallies, fired_notes)
    return Advice(
        route=route,
        first_benchmark=_first_benchmark(board, route, transparency),
        why=why,
        verify=_verify(board, route, transparency),
        caveats=caveats,
        alternatives=alternatives,
        is_default=is_default,
        notes=notes,
        matched=tuple(matched[:_MAX_MATCHED]),
        ruled_out=tuple(ruled_out),
        scores=tuple((t.route, t.net(cap)) for t in tallies.values() if t.net(cap) or t.negative()),
        in_workspace=tuple(ws for ws in workspace if route is not None and ws.board == route),
    )


def _matched(
    item: Evidence, meaning: str, kind: MatchKind, route: str | None, weight: int
) -> MatchedSignal:
    counted: Counted
    counted = "for" if item.supports else "against" if kind == "route" else "ignored"
    return MatchedSignal(
        phrase=item.quote,
        meaning=meaning,
        kind=kind,
        route=route,
        weight=weight,
        negated=item.negated,
        negated_by=item.negated_by,
        counted=counted,
    )


def _enumeration_bonus(board: Board, tallies: dict[str, _Tally]) -> list[str]:
    """Naming several providers next to a gateway need is itself the gateway's job.

    The names are then the gateway's targets ("one key for OpenAI, Google and FLUX"), so they
    stop counting for their own rows; job signals of those rows still count.
    """
    gateway = tallies["gateway"]
    if not gateway.points_for:
        return []
    named = [t.route for t in tallies.values() if t.route != "gateway" and t.names_provider()]
    if len(named) < board.enumeration_min:
        return []
    gateway.bonus = board.enumeration_bonus
    for route in named:
        tallies[route].absorbed = True
    return named


def _alternatives(
    board: Board,
    route: str | None,
    ranked: list[_Tally],
    ruled_out: list[str],
    transparency: bool,
    workspace: Sequence[WorkspaceRoute],
    cap: int,
) -> tuple[Alternative, ...]:
    chosen: list[tuple[str, str]] = []

    def allowed(candidate: str) -> bool:
        if candidate == route or candidate in ruled_out:
            return False
        if transparency and candidate == "openai":
            return False
        return all(candidate != r for r, _ in chosen)

    for tally in ranked:
        if len(chosen) == 2:
            break
        if allowed(tally.route):
            quotes = ", ".join(f"“{p.quote}”" for p in tally.counted())
            chosen.append(
                (
                    tally.route,
                    f"Runner-up on the question's own words ({quotes}; score {tally.net(cap)}).",
                )
            )
    specs = board.row(route).alternatives if route is not None else ()
    if transparency:
        specs = (*specs, *board.caveat("transparency").alternatives)
    for spec in specs:
        if len(chosen) == 2:
            break
        if allowed(spec.route):
            chosen.append((spec.route, spec.reason))
    for candidate in board.fallback_order:
        if len(chosen) == 2:
            break
        if allowed(candidate):
            chosen.append((candidate, f"Its job on the board: {board.row(candidate).job}."))
    return tuple(
        Alternative(
            route=alt,
            reason=reason,
            first_benchmark=board.row(alt).first_benchmark,
            in_workspace=tuple(ws for ws in workspace if ws.board == alt),
        )
        for alt, reason in chosen
    )


def _first_benchmark(board: Board, route: str | None, transparency: bool) -> str:
    if not transparency:
        return board.row(route or board.default_route).first_benchmark
    caveat = board.caveat("transparency")
    if route is None:
        return caveat.wording("benchmark_instead")
    if route == "openai":
        return caveat.wording("with_openai")
    return f"{board.row(route).first_benchmark}, {caveat.wording('with_route')}"


def _verify(board: Board, route: str | None, transparency: bool) -> tuple[str, ...]:
    items = list(board.row(route).verify) if route is not None else []
    if transparency:
        items.extend(board.caveat("transparency").verify)
    return tuple(items)


def _notes(
    board: Board,
    route: str | None,
    alternatives: tuple[Alternative, ...],
    tallies: dict[str, _Tally],
    fired_notes: dict[str, list[Evidence]],
) -> tuple[str, ...]:
    notes: list[str] = []
    if "stale-page" in fired_notes:
        notes.append(board.note("stale-page").text)
    # Not for a gateway that is only a fallback alternative: the note would be noise there.
    gateway_in_play = route == "gateway" or bool(tallies["gateway"].points_for)
    if gateway_in_play:
        notes.append(board.note("gateway-claims").text)
    if "strongest" in fired_notes:
        notes.append(board.note("strongest").text)
    return tuple(notes)


def _quotes(points: Sequence[_Point], limit: int = 4) -> str:
    shown = [f"“{p.quote}” ({p.label})" for p in points[:limit]]
    if len(points) > limit:
        shown.append(f"and {len(points) - limit} more")
    return ", ".join(shown)


def _why(
    board: Board,
    question: str,
    route: str | None,
    is_default: bool,
    ranked: list[_Tally],
    tallies: dict[str, _Tally],
    set_aside: list[_Tally],
    ruled_out: list[str],
    enumeration: list[str],
    fired_caveats: dict[str, list[Evidence]],
    cap: int,
) -> str:
    parts: list[str] = []
    default_row: BoardRow = board.row(board.default_route)
    if route is None:
        quotes = ", ".join(f"“{e.quote}”" for e in fired_caveats["transparency"][:4])
        parts.append(
            f"The question needs transparent output ({quotes}) and nothing else in it points "
            "at a route. GPT Image 2, the usual default, does not support transparent "
            "backgrounds, so no route fits as asked; the first benchmark says what to try "
            "instead."
        )
    elif is_default:
        if not question.strip():
            opening = "The question is empty, so"
        else:
            opening = "Nothing in the question points at a specific route, so"
        if route == board.default_route and route in ruled_out:
            parts.append(
                "The question rules out every row of the board as written, so this falls back "
                f"to the default: {route} with {default_row.first_benchmark}. It is a default "
                "starting point, not a verdict: re-read the constraints before benchmarking."
            )
        elif route == board.default_route:
            parts.append(
                f"{opening} this is the default: {route} with {default_row.first_benchmark} "
                "as the first benchmark. It is a default starting point for a benchmark, not "
                "a verdict."
            )
        else:
            parts.append(
                f"{opening} the default would be {board.default_route}, but it is ruled out "
                "here, so the default moves to the first row in board order that is not "
                f"ruled out: {route} ({board.row(route).first_benchmark}). It is a default "
                "starting point, not a verdict."
            )
    else:
        winner = tallies[route]
        parts.append(
            f"Recommended {route} ({board.row(route).title}) because the question mentions "
            f"{_quotes(winner.counted() or list(winner.points_for.values()))}."
        )
        if enumeration:
            parts.append(
                f"It names providers from several rows ({', '.join(enumeration)}) next to a "
                "need for one access layer, which is the gateway's job "
                f"(+{board.enumeration_bonus}); those names count as the gateway's targets, "
                "not as votes for their own rows."
            )
        others = [t for t in ranked if t.route != route]
        if others:
            listing = "; ".join(
                f"{t.route} {t.net(cap)} ({_quotes(t.counted(), 3)})" for t in others
            )
            parts.append(
                f"Several constraints point different ways: {route} {winner.net(cap)}; {listing}."
            )
            runner = others[0]
            if runner.net(cap) < winner.net(cap):
                reason = f"{route} has the highest total weight"
                if winner.strongest() >= 4 > runner.strongest():
                    reason += (
                        ": a hard deployment constraint that a hosted API cannot meet outweighs "
                        "platform preferences"
                    )
                elif winner.strongest() >= 3 > runner.strongest():
                    reason += ": an explicit platform or provider signal outweighs job hints"
                parts.append(reason + ".")
            elif runner.strongest() < winner.strongest():
                parts.append(
                    f"{route} and {runner.route} tie on total weight; the tie goes to the route "
                    f"with the strongest single signal (weight {winner.strongest()} vs "
                    f"{runner.strongest()})."
                )
            elif winner.names_something() and not runner.names_something():
                parts.append(
                    f"{route} and {runner.route} tie on total weight; the tie goes to {route} "
                    "because the question names its provider or model, while "
                    f"{runner.route} only matches a job description."
                )
            else:
                order = ", ".join(board.fallback_order)
                parts.append(
                    f"{route} and {runner.route} tie on total weight and on their strongest "
                    f"signal, so board order decides ({order}); benchmark both."
                )
    if set_aside:
        quotes = _quotes([p for t in set_aside for p in t.points_for.values()])
        parts.append(
            f"OpenAI hints ({quotes}) were set aside: GPT Image 2 cannot produce transparent "
            "backgrounds and nothing says the team must stay on OpenAI."
        )
    against = [
        (t.route, p)
        for t in tallies.values()
        for label, p in t.points_against.items()
        if label not in t.points_for
    ]
    if against:
        listing = ", ".join(f"“{p.quote}” (negated by “{p.negated_by}”)" for _, p in against)
        parts.append(f"Negated, so counted against rather than for: {listing}.")
    if ruled_out:
        parts.append(f"Ruled out by the question: {', '.join(ruled_out)}.")
    extra_caveats = [c for c in fired_caveats if not (c == "transparency" and route is None)]
    if extra_caveats:
        listing = "; ".join(
            f"{c} (“{fired_caveats[c][0].quote}”)" for c in _in_board_order(board, extra_caveats)
        )
        parts.append(f"Caveats raised: {listing}.")
    return " ".join(parts)


def _in_board_order(board: Board, caveat_ids: Sequence[str]) -> list[str]:
    return [c.id for c in board.caveats if c.id in caveat_ids]
