"""Command text is split into words as shlex.split splits it, on the fast path too."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.requests import split_words
from routes.errors import InvalidRequest

# What commands are made of: words, `=`, commas, shlex's four whitespace characters, double
# quotes, and characters shlex does not treat as whitespace (an em space, letters beyond ASCII).
PLAIN = st.text(alphabet=list('ab=,. \t\r\n"é\u2003x1'), max_size=40)
# ...and with the characters that take shlex's own path (single quotes, backslashes).
ANY = st.text(alphabet=list("ab=, \t\"'\\é"), max_size=40)


def shlex_words(text: str) -> list[str] | None:
    try:
        return shlex.split(text.strip())
    except ValueError:
        return None


def words(text: str) -> list[str] | None:
    try:
        return split_words(text)
    except InvalidRequest:
        return None


@settings(max_examples=3000, deadline=None)
@given(PLAIN)
def test_text_without_single_quotes_or_backslashes_splits_as_shlex_does(text: str) -> None:
    assert words(text) == shlex_words(text)


@settings(max_examples=1000, deadline=None)
@given(ANY)
def test_any_text_splits_as_shlex_does(text: str) -> None:
    assert words(text) == shlex_words(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('route=a,b prompt="a red kite"', ["route=a,b", "prompt=a red kite"]),
        ('prompt="" route=a', ["prompt=", "route=a"]),
        ('a""b "x"y', ["ab", "xy"]),
        ("prompt=“curly quotes”", ["prompt=curly quotes"]),
        ("prompt=&quot;a kite&quot; route=a", ["prompt=a kite", "route=a"]),
        ('prompt="it\'s" route=a', ["prompt=it's", "route=a"]),
        ("a\u00a0b", ["a", "b"]),
        ("a\u2003b", ["a\u2003b"]),
    ],
)
def test_examples(text: str, expected: list[str]) -> None:
    assert split_words(text) == expected


@pytest.mark.parametrize("text", ['prompt="unclosed', "prompt='unclosed", 'a "b" "c', "end\\"])
def test_an_unclosed_quote_is_one_sentence(text: str) -> None:
    with pytest.raises(InvalidRequest, match="A quote is not closed"):
        split_words(text)
