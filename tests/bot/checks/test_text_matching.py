"""Which text a prompt asks for, and how what OCR read is matched against it (no OCR here)."""

from __future__ import annotations

from bot.checks.model import quoted_text
from bot.checks.text import align, compare


def test_quoted_strings_in_every_usual_quote_style():
    prompt = (
        "Poster for 'NORTHERN LIGHTS' with \"JUNE 12-14\" and “TROMSØ” and «Café», "
        "don't quote apostrophes, nor Joe's mug"
    )
    assert quoted_text(prompt) == ("NORTHERN LIGHTS", "JUNE 12-14", "TROMSØ", "Café")


def test_a_quote_with_an_apostrophe_inside_is_one_string():
    assert quoted_text("a sign reading 'Joe's Diner' in neon") == ("Joe's Diner",)


def test_no_quotes_means_no_text_to_check():
    assert quoted_text("a red kite over the sea") == ()
    assert quoted_text("a sign with '!!!' on it") == ()


def test_alignment_finds_the_string_anywhere_in_what_was_read():
    distance, errors, read = align("sale", "bigsummersalenow")
    assert distance == 0 and errors == [0, 0, 0, 0] and "".join(read) == "sale"


def test_alignment_charges_each_kind_of_edit():
    distance, errors, read = align("festival", "xxfestnalxx")
    assert distance == 2  # "iv" read as "n": one substitution, one character missing
    assert sum(errors) == 2 and "".join(read) == "festnal"


def test_merged_words_and_case_do_not_count_as_errors():
    result = compare("Summer Sale", ["SUMMERSALE"])
    assert result.distance == 0 and all(w.errors == 0 for w in result.words)


def test_missing_and_misspelt_words_are_named():
    result = compare("NORTHERN LIGHTS JAZZ FESTIVAL", ["NORTHERN JAZZ FESTNAL"])
    by_word = {w.word: w for w in result.words}
    assert by_word["LIGHTS"].missing
    assert by_word["FESTIVAL"].errors and not by_word["FESTIVAL"].missing
    assert by_word["NORTHERN"].errors == 0 and by_word["JAZZ"].errors == 0


def test_nothing_read_means_every_word_missing():
    result = compare("SUMMER SALE", [])
    assert result.distance == result.length == 10
    assert all(w.missing for w in result.words)
