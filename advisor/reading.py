"""Reads a question: normalises it, finds board phrases on word boundaries, and applies negation.

Words are folded (width, case, accents, French elision, the spelling table, plurals, a typo in a
key term); Chinese and Japanese characters are one token each, so their phrases match without
word boundaries. Besides negation, each piece of evidence carries the emphasis the question gave
it (a stated priority, a contrast, or mere background) and whether it was stated as a must.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from advisor.board import Board, BoardError, CountsWhen, Trigger, load_board

# Typographic quotes and dashes people paste from docs and Slack; NFKC leaves most of them alone.
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00ad": "",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
        "\u300c": '"',
        "\u300d": '"',
        "\u300e": '"',
        "\u300f": '"',
        "\u3010": "(",
        "\u3011": ")",
        "\u300a": '"',
        "\u300b": '"',
        "\u30fb": " ",
        "\u00bf": " ",
        "\u00a1": " ",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Kana and Han characters: written without spaces, so each one is a token of its own.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_LETTER = rf"[^\W_{_CJK}]"
# A CJK character, a word (letters/digits, with inner apostrophes) or a clause boundary. A dot
# only ends a clause before whitespace, so "gpt-image-1.5" and "fal.ai" stay whole.
_TOKEN = re.compile(
    rf"(?P<c>[{_CJK}])|(?P<w>{_LETTER}+(?:'{_LETTER}+)*)"
    r"|(?P<b>[,;:!?()\[\]{}|\n\"\u3001\u3002]|\.(?=\s|$)|\s-+\s|\s/\s)"
)
_SENTENCE_ENDS = frozenset({".", "!", "?", ";", "", "\u3002"})
_PATTERN_WORD = re.compile(rf"[{_CJK}]|{_LETTER}+(?:'{_LETTER}+)*\*?")
# Scripts the advisor does not read: a question written in them is "not understood".
_FOREIGN = re.compile(
    r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0eff\uac00-\ud7af]"
)
# Distances are counted in half-words: a Latin word is 2, a CJK character 1 (about half a word).
_LATIN_STEP = 2
_CJK_STEP = 1
# The longest scope phrase, in tokens: bounds the search for a phrase inside another.
_SCOPE_SPAN = 6
# How far (half-words) an emphasis cue can be from the words it weighs: about 40 words.
_EMPHASIS_REACH = 40 * _LATIN_STEP
# Contractions whose stem is not the plain word before "n't".
_NOT_STEMS = {"ca": "can", "wo": "will", "sha": "shall", "ai": "am"}
_DROPPED_SUFFIXES = frozenset({"s", "re", "ve", "ll", "d", "m"})
_ENGLISH_SUFFIXES = _DROPPED_SUFFIXES | {"t"}
_WORD_CACHE_SIZE = 20_000
# Only words this long are typo-corrected, and only to a key term at edit distance 1; no key
# term is longer than _TYPO_MAX, so longer words (a pasted hash or URL) are never tried.
_TYPO_MIN = 5
_TYPO_MAX = 20


class Tag(IntEnum):
    NEUTRAL = 0
    NEG_BEFORE = 1
    NEG_FROM = 2
    NEG_AFTER = 3
    NEG_BOTH = 4
    BREAKER = 5
    FROM_STOP = 6
    DIRECT = 7
    GROUP = 8
    PRIORITY = 9  # "the main requirement is ...": what follows is what matters most
    PRIORITY_AFTER = 10  # "... is a must"
    CONTRAST = 11  # "but": what follows outweighs what came before
    CONCESSION = 12  # "although ...": that clause is background
    BACKGROUND = 13  # "half our stack", "we happen to use": context, not the need
    REQUIRE = 14  # "only", "policy", "required": a statement of a hard rule
    SCOPE_IMAGE = 15  # the question is about images
    SCOPE_GENERIC = 16  # about APIs/models/providers in general
    SCOPE_OUTSIDE = 17  # about something the advisor does not cover (video, PTO...)


_CUES = frozenset({Tag.NEG_BEFORE, Tag.NEG_FROM, Tag.NEG_AFTER, Tag.NEG_BOTH})
_EMPHASIS_CUES = frozenset(
    {Tag.PRIORITY, Tag.PRIORITY_AFTER, Tag.CONTRAST, Tag.CONCESSION, Tag.BACKGROUND, Tag.REQUIRE}
)
# Emphasis levels carried by evidence.
STATED_PRIORITY = 2
AFTER_CONTRAST = 1
PLAIN = 0
BACKGROUND = -1

# (tag, detector index, group index); detector/group are -1 when they do not apply.
TagRef = tuple[Tag, int, int]
PatternWord = tuple[str, bool]  # (text, is_prefix)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    clause: int
    sentence: int
    pos: int  # in half-words from the start, so windows mean the same in every script


@dataclass(frozen=True, slots=True)
class Detector:
    """A trigger compiled for matching; `owner` says what fires:
    ("signal"|"caveat"|"clear"|"note"|"topic", index)."""

    owner: tuple[str, int]
    trigger: Trigger


@dataclass(slots=True)
class _Hit:
    first: int  # token index
    last: int  # token index, inclusive
    tags: tuple[TagRef, ...]
    negated_by: str | None = None
    negated_span: tuple[int, int] | None = None  # tokens from the cue to this phrase
    content: bool = False  # can be negated (a signal, caveat or note phrase)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A detector that fired: where, with what words, and whether a negation covered it.

    `supports` is the polarity that counts: True means evidence for the detector's owner
    (including triggers that only mean something when negated, such as "no public cloud");
    False means the owner was mentioned under a negation and counts against it.
    """

    detector: int
    negated: bool
    supports: bool
    quote: str
    negated_by: str | None
    position: int
    last: int = -1
    emphasis: int = PLAIN  # STATED_PRIORITY, AFTER_CONTRAST, PLAIN or BACKGROUND
    required: bool = False  # said as a must, a rule or "only"
    said: str = ""  # the quote with its negation, as the user wrote it: "no third-party servers"


@dataclass(frozen=True, slots=True)
class Reading:
    text: str
    tokens: tuple[Token, ...]
    evidence: tuple[Evidence, ...]
    about_images: bool = False  # an image word ("logo", "product shots", "画像")
    generic: bool = False  # an API/model/provider word, but nothing image-specific
    outside: tuple[str, ...] = ()  # quotes of subjects outside the advisor ("video clips")
    function_words: int = 0  # words of a supported language ("we", "our", "de", "の")
    foreign_letters: int = 0  # letters of scripts the advisor does not read


class Matcher:
    """All board phrases compiled into a first-word index for leftmost-longest matching."""

    def __init__(self, board: Board) -> None:
        language = board.language
        self.window = language.negation_window
        self._spelling = dict(language.spelling)
        self._elision = dict(language.elision)
        self._word_cache: dict[str, tuple[str, ...]] = {}
        self._question_cache: dict[str, tuple[str, ...]] = {}
        self.coordination = frozenset(
            word for phrase in language.coordination for word in self.words(phrase)
        )
        self.detectors: list[Detector] = []
        self._entries: dict[tuple[PatternWord, ...], list[TagRef]] = {}
        owners: tuple[tuple[str, list[tuple[Trigger, ...]]], ...] = (
            ("signal", [(signal.trigger,) for signal in board.signals]),
            ("caveat", [caveat.triggers for caveat in board.caveats]),
            ("clear", [caveat.clears for caveat in board.caveats]),
            ("note", [note.triggers for note in board.notes]),
            ("topic", [topic.triggers for topic in board.topics]),
        )
        for kind, per_owner in owners:
            for index, triggers in enumerate(per_owner):
                for trigger in triggers:
                    self._add_detector((kind, index), trigger)
        plain: list[tuple[tuple[str, ...], Tag]] = [
            (language.neutral, Tag.NEUTRAL),
            (language.negation_before, Tag.NEG_BEFORE),
            (language.negation_from, Tag.NEG_FROM),
            (language.negation_after, Tag.NEG_AFTER),
            (language.negation_both, Tag.NEG_BOTH),
            (language.scope_breakers, Tag.BREAKER),
            (language.from_stops, Tag.FROM_STOP),
            (language.priority, Tag.PRIORITY),
            (language.priority_after, Tag.PRIORITY_AFTER),
            (language.contrast, Tag.CONTRAST),
            (language.concession, Tag.CONCESSION),
            (language.background, Tag.BACKGROUND),
            (language.require, Tag.REQUIRE),
        ]
        for phrases, tag in plain:
            for phrase in phrases:
                self._add(phrase, (tag, -1, -1))
        self._index_entries()
        scope_patterns = self._index_scope(board)
        self._index_typos(language.typo_terms, scope_patterns)
        self.function_words = frozenset(
            word for phrase in board.scope.function_words for word in self.words(phrase)
        )

    def _index_entries(self) -> None:
        """Phrases by first word (exact) or first three letters (prefix), longest first."""
        self._exact: dict[str, list[tuple[tuple[PatternWord, ...], tuple[TagRef, ...]]]] = {}
        self._prefix: dict[str, list[tuple[tuple[PatternWord, ...], tuple[TagRef, ...]]]] = {}
        for pattern, tags in self._entries.items():
            text, is_prefix = pattern[0]
            index_map = self._prefix if is_prefix else self._exact
            key = text[:3] if is_prefix else text
            index_map.setdefault(key, []).append((pattern, tuple(tags)))
        for candidates in (*self._exact.values(), *self._prefix.values()):
            candidates.sort(key=lambda item: -len(item[0]))

    def _index_scope(self, board: Board) -> list[tuple[tuple[PatternWord, ...], Tag]]:
        """Scope words are matched in a pass of their own that consumes nothing, so "image"
        inside "image API" (a signal phrase) still says the question is about images."""
        self._scope: dict[str, list[tuple[tuple[PatternWord, ...], Tag]]] = {}
        scope_lists = (
            (board.scope.image, Tag.SCOPE_IMAGE),
            (board.scope.generic, Tag.SCOPE_GENERIC),
            (board.scope.outside, Tag.SCOPE_OUTSIDE),
        )
        patterns = [
            (self.compile_phrase(phrase), tag) for phrases, tag in scope_lists for phrase in phrases
        ]
        for pattern, tag in patterns:
            if len(pattern) > _SCOPE_SPAN:
                raise BoardError(f"scope phrase {pattern} is longer than {_SCOPE_SPAN} tokens")
            text, is_prefix = pattern[0]
            key = ("*" + text[:3]) if is_prefix else text
            self._scope.setdefault(key, []).append((pattern, tag))
        return patterns

    def _index_typos(
        self, typo_terms: tuple[str, ...], scope: list[tuple[tuple[PatternWord, ...], Tag]]
    ) -> None:
        """Words the board knows are never "corrected"; other words one edit away from a key
        term are read as that term ("agnet" -> "agent", "transparnet" -> "transparent")."""
        known = [*self._entries, *(pattern for pattern, _ in scope)]
        self._vocabulary = frozenset(
            text for pattern in known for text, is_prefix in pattern if not is_prefix
        )
        self._prefixes = frozenset(
            text for pattern in known for text, is_prefix in pattern if is_prefix
        )
        self._typos: dict[str, list[str]] = {}
        for raw in typo_terms:
            if len(raw) > _TYPO_MAX:
                raise BoardError(f"typo term {raw!r} is longer than {_TYPO_MAX} letters")
            for term in self.words(raw):
                for variant in {term, *_deletions(term)}:
                    targets = self._typos.setdefault(variant, [])
                    if term not in targets:
                        targets.append(term)

    def _add_detector(self, owner: tuple[str, int], trigger: Trigger) -> None:
        index = len(self.detectors)
        self.detectors.append(Detector(owner=owner, trigger=trigger))
        for phrase in trigger.phrases:
            self._add(phrase, (Tag.DIRECT, index, -1))
        for group_index, group in enumerate(trigger.all_of):
            for phrase in group:
                self._add(phrase, (Tag.GROUP, index, group_index))

    def _add(self, phrase: str, tag: TagRef) -> None:
        pattern = self.compile_phrase(phrase)
        if not pattern:
            raise BoardError(f"phrase {phrase!r} has no words")
        tags = self._entries.setdefault(pattern, [])
        if tag not in tags:
            tags.append(tag)

    def compile_phrase(self, phrase: str) -> tuple[PatternWord, ...]:
        words: list[PatternWord] = []
        for raw in _PATTERN_WORD.findall(_clean(phrase)):
            if raw.endswith("*"):
                prefix = _fold(raw[:-1])
                if len(prefix) < 3:
                    raise BoardError(f"prefix {raw!r} in {phrase!r} needs 3+ characters")
                words.append((prefix, True))
            else:
                words.extend((word, False) for word in self.words(raw))
        return tuple(words)

    def words(self, raw: str) -> tuple[str, ...]:
        """One surface word -> matching words: contractions, spelling table, plural stem."""
        cached = self._word_cache.get(raw)
        if cached is None:
            if len(self._word_cache) >= _WORD_CACHE_SIZE:
                self._word_cache.clear()  # bounded: a 100k-character paste must not grow it
            cached = self._word_cache[raw] = tuple(self._words(raw))
        return cached

    def question_words(self, raw: str) -> tuple[str, ...]:
        """Like `words`, plus typo correction of key terms: for questions, never for phrases."""
        cached = self._question_cache.get(raw)
        if cached is None:
            if len(self._question_cache) >= _WORD_CACHE_SIZE:
                self._question_cache.clear()
            cached = self._question_cache[raw] = tuple(self._correct(w) for w in self.words(raw))
        return cached

    def _correct(self, word: str) -> str:
        if not _TYPO_MIN <= len(word) <= _TYPO_MAX or word in self._vocabulary:
            return word
        if not word.isascii():
            return word
        if any(word.startswith(prefix) for prefix in self._prefixes):
            return word
        found: set[str] = set()
        for variant in (word, *_deletions(word)):
            for term in self._typos.get(variant, ()):
                if _one_edit(word, term):
                    found.add(term)
        return found.pop() if len(found) == 1 else word

    def _words(self, raw: str) -> list[str]:
        word = _fold(raw)
        if "'" in word:
            base, _, suffix = word.partition("'")
            elided = self._elision.get(base)
            if elided is not None and suffix not in _ENGLISH_SUFFIXES:
                # French elision: "l'organisation" -> "le organisation", "n'utilisons" -> "ne ..."
                return [*self._words(elided), *self._words(suffix)]
            if suffix == "t" and base.endswith("n"):
                stem = base[:-1]
                return [*self._words(_NOT_STEMS.get(stem, stem)), "not"]
            word = base if suffix in _DROPPED_SUFFIXES else base + suffix.replace("'", "")
        replacement = self._spelling.get(word)
        if replacement is None:  # plurals of joined words: "datacenters", "finetunes"
            replacement = self._spelling.get(_stem(word))
        if replacement is not None:
            return [_stem(part) for part in replacement.split()]
        return [_stem(word)]

    def tokens(self, clean: str) -> list[Token]:
        tokens: list[Token] = []
        clause = sentence = pos = 0
        for match in _TOKEN.finditer(clean):
            group = match.lastgroup
            if group == "b":
                clause += 1
                if match.group().strip() in _SENTENCE_ENDS:
                    sentence += 1
                continue
            if group == "c":
                char = match.group()
                tokens.append(Token(char, match.start(), match.end(), clause, sentence, pos))
                pos += _CJK_STEP
                continue
            for word in self.question_words(match.group()):
                tokens.append(Token(word, match.start(), match.end(), clause, sentence, pos))
                pos += _LATIN_STEP
        return tokens

    def scope(self, tokens: list[Token]) -> list[tuple[Tag, int, int]]:
        """Every scope phrase in the question (tag, first, last), overlapping allowed."""
        found: list[tuple[Tag, int, int]] = []
        count = len(tokens)
        for position, token in enumerate(tokens):
            for key, skip in ((token.text, 1), ("*" + token.text[:3], 0)):
                for pattern, tag in self._scope.get(key, ()):
                    last = position + len(pattern) - 1
                    if last >= count or tokens[last].clause != token.clause:
                        continue
                    if _matches(pattern, tokens, position, skip):
                        found.append((tag, position, last))
        # Inside a longer scope phrase a shorter one means nothing: "画" (picture) in "動画"
        # (video) does not make a video question about images. Scope phrases are a few words
        # long, so only phrases starting a few tokens earlier can contain another.
        ends_by_start: dict[int, list[int]] = {}
        for _, first, last in found:
            ends_by_start.setdefault(first, []).append(last)
        return [
            (tag, first, last)
            for tag, first, last in found
            if not any(
                end >= last and end - start > last - first
                for start in range(max(0, first - _SCOPE_SPAN), first + 1)
                for end in ends_by_start.get(start, ())
            )
        ]

    def _longest(
        self, tokens: list[Token], position: int
    ) -> tuple[int, list[TagRef], list[TagRef]]:
        """The longest phrases starting at `position` (length and tags), and the tags of the
        shorter phrases that also match there."""
        token = tokens[position]
        count = len(tokens)
        best_length = 0
        best_tags: list[TagRef] = []
        shorter: list[TagRef] = []
        for candidates, skip in (
            (self._exact.get(token.text), 1),  # the index key already matched word 0
            (self._prefix.get(token.text[:3]), 0),
        ):
            for pattern, tags in candidates or ():
                length = len(pattern)
                if position + length > count:
                    continue
                if tokens[position + length - 1].clause != token.clause:
                    continue
                if not _matches(pattern, tokens, position, skip):
                    continue
                if length > best_length:
                    shorter.extend(best_tags)
                    best_length, best_tags = length, list(tags)
                elif length == best_length:
                    best_tags.extend(tag for tag in tags if tag not in best_tags)
                else:
                    shorter.extend(tags)
        return best_length, best_tags, shorter

    def hits(self, tokens: list[Token]) -> list[_Hit]:
        """Leftmost-longest phrase matches that stay inside one clause.

        Every phrase of the winning length contributes its tags, so "leave" can be both a
        negation cue and part of "leave ... our VPC".
        """
        hits: list[_Hit] = []
        count = len(tokens)
        position = 0
        while position < count:
            best_length, best_tags, shorter = self._longest(tokens, position)
            if not best_length:
                position += 1
                continue
            if any(tag is Tag.NEUTRAL for tag, _, _ in best_tags):
                # A neutral phrase exists to say "this is not a signal" ("googled", "in flux").
                best_tags = [(Tag.NEUTRAL, -1, -1)]
            else:
                # The longest phrase wins, but a word it starts with still counts as part of a
                # combination: "gpt-image-2" is also the "gpt" of "gpt ... 403".
                best_tags.extend(
                    tag for tag in shorter if tag[0] is Tag.GROUP and tag not in best_tags
                )
            last = position + best_length - 1
            hits.append(_Hit(first=position, last=last, tags=tuple(best_tags)))
            position = last + 1
        return hits


def _matches(
    pattern: tuple[PatternWord, ...], tokens: list[Token], position: int, skip: int
) -> bool:
    for offset in range(skip, len(pattern)):
        text, is_prefix = pattern[offset]
        word = tokens[position + offset].text
        if not (word.startswith(text) if is_prefix else word == text):
            return False
    return True


def _fold(raw: str) -> str:
    """Case and accents folded: "Ä" -> "a", "ß" -> "ss"; kana keep their voicing marks."""
    word = raw.casefold()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and kept[-1] < "\u0250":
            continue  # an accent on a Latin letter
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """True when a and b differ by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _stem(word: str) -> str:
    # Plural folding only: enough for "GPUs", "logos", "stickers", "APIs", cheap and predictable.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION)
    return _CONTROL.sub(" ", text)


@cache
def matcher() -> Matcher:
    return Matcher(load_board())


def read(question: str) -> Reading:
    """Tokenise `question`, match board phrases, resolve negation, and evaluate detectors."""
    engine = matcher()
    clean = _clean(question)
    tokens = engine.tokens(clean)
    hits = engine.hits(tokens)
    _apply_negation(hits, tokens, clean, engine.window, engine.coordination, engine.detectors)
    cues = [hit for hit in hits if _kinds(hit) & _EMPHASIS_CUES]
    evidence = _evaluate(hits, tokens, clean, engine.detectors, _Emphasis(cues, tokens))
    about_images = generic = False
    outside: list[str] = []
    for tag, first, last in engine.scope(tokens):
        if tag is Tag.SCOPE_IMAGE:
            about_images = True
        elif tag is Tag.SCOPE_GENERIC:
            generic = True
        elif len(outside) < 4:
            outside.append(_quote(clean, tokens, first, last))
    return Reading(
        text=clean,
        tokens=tuple(tokens),
        evidence=tuple(evidence),
        about_images=about_images,
        generic=generic,
        outside=tuple(dict.fromkeys(outside)),
        function_words=sum(token.text in engine.function_words for token in tokens),
        foreign_letters=len(_FOREIGN.findall(clean)),
    )


class _Emphasis:
    """How the question weighs a span of words: a stated priority ("the main requirement is",
    "... is a must") outranks words after a contrast ("but ..."), which outrank plain words;
    background ("half our stack", "although we use ...") ranks below plain words."""

    def __init__(self, cues: list[_Hit], tokens: list[Token]) -> None:
        self.cues = cues  # in question order
        self.tokens = tokens
        self._starts = [tokens[cue.first].pos for cue in cues]

    def of(self, first: int, last: int) -> tuple[int, bool]:
        """(emphasis level, said as a rule) for the words from token `first` to `last`."""
        seen = self._cues_around(first, last)
        if "stated here" in seen:
            level = STATED_PRIORITY
        elif "background" in seen:
            level = BACKGROUND
        elif "stated before" in seen:
            level = STATED_PRIORITY
        elif "concession" in seen:
            level = BACKGROUND
        elif "contrast" in seen:
            level = AFTER_CONTRAST
        else:
            level = PLAIN
        return level, level == STATED_PRIORITY or ("rule" in seen and level != BACKGROUND)

    def _cues_around(self, first: int, last: int) -> set[str]:
        """Which kinds of emphasis cue bear on these words, in their sentence."""
        tokens = self.tokens
        sentence = tokens[first].sentence
        clauses = range(tokens[first].clause, tokens[last].clause + 1)
        # Cues of this sentence, near enough to bear on the words (a pasted wall of text is one
        # long "sentence"); a contrast ("but") ends the reach of a priority before it.
        low = bisect.bisect_left(self._starts, tokens[first].pos - _EMPHASIS_REACH)
        high = bisect.bisect_right(self._starts, tokens[last].pos + _EMPHASIS_REACH)
        cues = [c for c in self.cues[low:high] if tokens[c.first].sentence == sentence]
        last_contrast = max(
            (c.last for c in cues if Tag.CONTRAST in _kinds(c) and c.last < first), default=-1
        )
        seen: set[str] = set()
        for cue in cues:
            kinds = _kinds(cue)
            clause = tokens[cue.first].clause
            here = clause in clauses
            before = last_contrast < cue.last < first
            # "... is a must" points back at the words just before it, in their clause.
            after = (
                cue.first > last
                and here
                and tokens[cue.first].pos - tokens[last].pos <= 8 * _LATIN_STEP
            )
            if (Tag.PRIORITY in kinds and before) or (Tag.PRIORITY_AFTER in kinds and after):
                seen.add("stated here" if here else "stated before")
            if Tag.BACKGROUND in kinds and here:
                seen.add("background")
            # "Although we use GCP, ..." opens a background clause; "the priority though is"
            # (not at the clause start) does not.
            opens_clause = cue.first == 0 or tokens[cue.first - 1].clause != clause
            if Tag.CONCESSION in kinds and here and cue.last < first and opens_clause:
                seen.add("concession")
            if Tag.CONTRAST in kinds and cue.last < first:
                seen.add("contrast")
            if Tag.REQUIRE in kinds and here:
                seen.add("rule")
        return seen


def _kinds(hit: _Hit) -> set[Tag]:
    return {tag for tag, _, _ in hit.tags}


def _apply_negation(
    hits: list[_Hit],
    tokens: list[Token],
    clean: str,
    window: int,
    coordination: frozenset[str],
    detectors: list[Detector],
) -> None:
    live = _live_combos(hits, detectors)
    # Requirement phrases that count either way ("may leave our network") end a chain of
    # side-by-side phrases: what follows them is a separate fact, not more of the negated list.
    either = frozenset(i for i, d in enumerate(detectors) if d.trigger.counts_when == "either")
    for hit in hits:
        hit.content = any(
            tag is Tag.DIRECT or (tag is Tag.GROUP and detector in live)
            for tag, detector, _ in hit.tags
        )
    for index, cue in enumerate(hits):
        kinds = _kinds(cue)
        if not kinds & _CUES:
            continue
        cue_text = clean[tokens[cue.first].start : tokens[cue.last].end]
        scope = _Scope(cue, cue_text, tokens, window, coordination, either)
        if kinds & {Tag.NEG_BEFORE, Tag.NEG_FROM, Tag.NEG_BOTH}:
            scope.negate(hits[index + 1 :], forward=True, stop_at_from=Tag.NEG_FROM in kinds)
        if kinds & {Tag.NEG_AFTER, Tag.NEG_BOTH}:
            scope.negate(list(reversed(hits[:index])), forward=False, stop_at_from=False)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one negation cue reaches: the first meaningful phrase within `window` words in the
    same clause, plus phrases joined to it by coordination words ("not GCP or Vertex"). Stopping
    after the first phrase keeps "isn't verified with OpenAI" from negating OpenAI."""

    cue: _Hit
    cue_text: str
    tokens: list[Token]
    window: int
    coordination: frozenset[str]
    either: frozenset[int] = frozenset()

    def negate(self, candidates: list[_Hit], *, forward: bool, stop_at_from: bool) -> None:
        tokens = self.tokens
        clause = tokens[self.cue.first].clause
        previous: _Hit | None = None
        for hit in candidates:
            if tokens[hit.first].clause != clause:
                break
            kinds = _kinds(hit)
            if Tag.BREAKER in kinds or kinds & _CUES or (stop_at_from and Tag.FROM_STOP in kinds):
                break
            if not hit.content:
                continue
            if not self._reaches(hit, previous, forward=forward):
                break
            if hit.negated_by is None:
                hit.negated_by = self.cue_text
                hit.negated_span = (
                    (self.cue.first, hit.last) if forward else (hit.first, self.cue.last)
                )
            if any(detector in self.either for _, detector, _ in hit.tags):
                break
            previous = hit

    def _reaches(self, hit: _Hit, previous: _Hit | None, *, forward: bool) -> bool:
        """The first phrase must be within the window; each next one joined to the previous
        by coordination words only ("not GCP or Vertex")."""
        tokens = self.tokens
        if previous is None:
            if forward:
                distance = tokens[hit.first].pos - tokens[self.cue.last].pos
            else:
                distance = tokens[self.cue.first].pos - tokens[hit.last].pos
            return distance <= self.window * _LATIN_STEP
        if forward:
            gap = tokens[previous.last + 1 : hit.first]
        else:
            gap = tokens[hit.last + 1 : previous.first]
        return all(token.text in self.coordination for token in gap)


def _live_combos(hits: list[_Hit], detectors: list[Detector]) -> set[int]:
    """Combos with every group present somewhere: only their terms count as content for
    negation, so a stray "our" (part of "train on our images") does not end a scope."""
    seen: dict[int, set[int]] = {}
    for hit in hits:
        for tag, detector, group in hit.tags:
            if tag is Tag.GROUP:
                seen.setdefault(detector, set()).add(group)
    return {d for d, groups in seen.items() if len(groups) == len(detectors[d].trigger.all_of)}


# Bounds the combination search on pathological inputs (a 100k-character wall of "agent tool").
_MAX_GROUP_HITS = 24


def _evaluate(
    hits: list[_Hit],
    tokens: list[Token],
    clean: str,
    detectors: list[Detector],
    emphasis: _Emphasis,
) -> list[Evidence]:
    evidence: list[Evidence] = []
    groups: dict[int, dict[int, list[_Hit]]] = {}
    cue_ends = {hit.last: hit for hit in hits if _kinds(hit) & _CUES}
    for hit in hits:
        for tag, detector, group in hit.tags:
            if tag is Tag.DIRECT:
                negated = hit.negated_by is not None
                supports = _supports(detectors[detector].trigger.counts_when, negated)
                if supports is not None:
                    level, required = emphasis.of(hit.first, hit.last)
                    quote = _quote(clean, tokens, hit.first, hit.last)
                    evidence.append(
                        Evidence(
                            detector=detector,
                            negated=negated,
                            supports=supports,
                            quote=quote,
                            negated_by=hit.negated_by,
                            position=hit.first,
                            last=hit.last,
                            emphasis=level,
                            required=required,
                            said=_said(clean, tokens, [hit], cue_ends) or quote,
                        )
                    )
            elif tag is Tag.GROUP:
                members = groups.setdefault(detector, {}).setdefault(group, [])
                if len(members) < _MAX_GROUP_HITS:
                    members.append(hit)
    for detector, found in groups.items():
        trigger = detectors[detector].trigger
        if len(found) < len(trigger.all_of):
            continue
        combination = _best_combination(
            [found[g] for g in range(len(trigger.all_of))], trigger.within, tokens
        )
        if combination is None:
            continue
        negated_by = next((h.negated_by for h in combination if h.negated_by), None)
        negated = negated_by is not None
        supports = _supports(trigger.counts_when, negated)
        if supports is None:
            continue
        first = min(h.first for h in combination)
        last = max(h.last for h in combination)
        level, required = emphasis.of(first, last)
        quote = _quote(clean, tokens, first, last, parts=combination)
        evidence.append(
            Evidence(
                detector=detector,
                negated=negated,
                supports=supports,
                quote=quote,
                negated_by=negated_by,
                position=first,
                last=last,
                emphasis=level,
                required=required,
                said=_said(clean, tokens, list(combination), cue_ends) or quote,
            )
        )
    evidence.sort(key=lambda item: item.position)
    return evidence


def _supports(counts_when: CountsWhen, negated: bool) -> bool | None:
    """True: evidence for the owner; False: evidence against it; None: means nothing."""
    if counts_when == "either":
        return True
    if counts_when == "negated":
        return True if negated else None
    return not negated


def _best_combination(
    groups: list[list[_Hit]], within: int, tokens: list[Token]
) -> tuple[_Hit, ...] | None:
    """A positive combination if one exists, else a negated one, else None.

    A bounded combination (`within` > 0) must also sit in one sentence."""
    fallback: tuple[_Hit, ...] | None = None
    for combination in itertools.product(*groups):
        if len({id(hit) for hit in combination}) != len(combination):
            continue
        if within:
            starts = [tokens[hit.first].pos for hit in combination]
            if max(starts) - min(starts) > within * _LATIN_STEP:
                continue
            if len({tokens[hit.first].sentence for hit in combination}) > 1:
                continue
        if all(hit.negated_by is None for hit in combination):
            return combination
        if fallback is None:
            fallback = combination
    return fallback


# A quote with its negation is shown only while it stays short enough to read in one breath.
_SAID_MAX = 90


def _said(
    clean: str, tokens: list[Token], hits: list[_Hit], cue_ends: dict[int, _Hit] | None = None
) -> str:
    """The phrase with the negation that turned it around ("no third-party servers"), or a
    negation right before it ("can't leave our build farm"); "" when there is none."""
    spans = [hit.negated_span for hit in hits if hit.negated_span is not None]
    if cue_ends:
        first = min(h.first for h in hits)
        first = min(first, *(a for a, _ in spans)) if spans else first
        for gap in range(1, 4):
            cue = cue_ends.get(first - gap)
            if cue is not None and tokens[cue.first].clause == tokens[first].clause:
                spans.append((cue.first, first))
                break
    if not spans:
        return ""
    first = min(min(h.first for h in hits), *(a for a, _ in spans))
    last = max(max(h.last for h in hits), *(b for _, b in spans))
    if tokens[last].end - tokens[first].start > _SAID_MAX:
        return ""
    return _quote(clean, tokens, first, last)


def _quote(
    clean: str, tokens: list[Token], first: int, last: int, parts: tuple[_Hit, ...] = ()
) -> str:
    start, end = tokens[first].start, tokens[last].end
    if end - start <= 60 or not parts:
        return " ".join(clean[start:end].split())
    ordered = sorted(parts, key=lambda hit: hit.first)
    pieces = [clean[tokens[h.first].start : tokens[h.last].end] for h in ordered]
    return " … ".join(" ".join(piece.split()) for piece in pieces)
