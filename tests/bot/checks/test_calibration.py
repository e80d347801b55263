"""Each check separates good outputs from degraded ones on the calibration set (made by
tests/bot/checks/calibration.py): the pass marks are the defaults of the routes file."""

from __future__ import annotations

import pytest
from PIL import Image

from bot.checks.delivery import delivery_check
from bot.checks.edit import edit_check
from bot.checks.model import FAILED, PASSED, Ask
from bot.checks.pictures import open_image
from bot.checks.repeat import fingerprint, mean_similarity, similarity
from bot.checks.text import text_check
from bot.checks.transparency import transparency_check
from routes.config import CheckSettings
from tests.bot.checks import calibration as cal

SETTINGS = CheckSettings()
DEGRADED = {
    "blurred": lambda: cal.blurred(cal.poster()),
    "noisy": lambda: cal.noisy(cal.poster()),
    "letters swapped": lambda: cal.poster(cal.swap_letters(cal.POSTER_LINES)),
    "words dropped": lambda: cal.poster(cal.drop_words(cal.POSTER_LINES)),
    "no text": lambda: cal.poster(()),
}


def test_a_clean_poster_reads_back_its_text():
    result = text_check(cal.poster(), cal.POSTER_TEXT, SETTINGS.text_min_accuracy)
    assert result.status == PASSED, result.detail
    assert result.score is not None and result.score >= 0.95
    assert result.detail["missing"] == [] and result.reason is None


@pytest.mark.parametrize("how", sorted(DEGRADED))
def test_a_degraded_poster_fails_and_says_which_words(how):
    result = text_check(DEGRADED[how](), cal.POSTER_TEXT, SETTINGS.text_min_accuracy)
    assert result.status == FAILED, (how, result.score, result.detail["read"])
    assert result.score is not None and result.score < SETTINGS.text_min_accuracy
    assert result.reason and ("missing" in result.reason or "wrong" in result.reason)
    if how == "words dropped":
        assert {"OFF", "Lights", "Festival"} <= set(result.detail["missing"])
    if how == "letters swapped":
        assert any(w["word"] == "SUMMER" for w in result.detail["wrong"])


def test_an_edit_inside_the_mask_keeps_the_outside():
    case = cal.edit_case()
    result = edit_check(open_image(case.output), case.source, case.mask, SETTINGS)
    assert result.status == PASSED, result.reason
    assert result.detail["kept_outside"] >= 0.98
    assert result.detail["changed_inside"] >= 0.2


def test_a_recompressed_edit_still_counts_as_kept():
    case = cal.edit_case(recompressed=True)
    result = edit_check(open_image(case.output), case.source, case.mask, SETTINGS)
    assert result.status == PASSED, result.reason


def test_an_edit_that_redraws_the_outside_fails_in_words():
    case = cal.edit_case(outside_too=True)
    result = edit_check(open_image(case.output), case.source, case.mask, SETTINGS)
    assert result.status == FAILED
    assert result.detail["kept_outside"] < 0.8
    assert result.reason and "changed outside the mask" in result.reason


def test_an_edit_that_changed_nothing_inside_fails():
    case = cal.edit_case()
    result = edit_check(open_image(case.source), case.source, case.mask, SETTINGS)
    assert result.status == FAILED
    assert result.reason and "hardly changed inside the mask" in result.reason


def test_without_a_mask_the_overall_similarity_separates():
    kept = cal.edit_case()
    redrawn = cal.edit_case(outside_too=True)
    good = edit_check(open_image(kept.output), kept.source, None, SETTINGS)
    bad = edit_check(open_image(redrawn.output), redrawn.source, None, SETTINGS)
    assert good.score is not None and bad.score is not None
    assert good.score - bad.score > 0.2
    assert good.summary.endswith("overall")


def test_a_reframed_edit_is_compared_at_the_source_size_and_said_to_be_reframed():
    case = cal.edit_case()
    wide = open_image(case.output).resize((1536, 1024))
    result = edit_check(wide, case.source, case.mask, SETTINGS)
    assert result.detail["reframed"] is True


@pytest.mark.parametrize(
    ("sticker", "edge"),
    [
        (cal.cutout, "hard"),
        (cal.antialiased_cutout, "anti-aliased"),
        (lambda: cal.cutout(soft=True), "soft"),
    ],
)
def test_a_cut_out_is_transparent_and_its_edge_named(sticker, edge):
    result = transparency_check(open_image(cal.png(sticker())), SETTINGS.transparency_min_share)
    assert result.status == PASSED
    assert result.detail["edge"] == edge
    assert result.score is not None and 0.6 < result.score < 0.8


def test_a_flattened_copy_has_no_alpha_and_fails():
    flat = open_image(cal.png(cal.flattened_copy(cal.cutout())))
    result = transparency_check(flat, SETTINGS.transparency_min_share)
    assert result.status == FAILED and result.reason and "no alpha channel" in result.reason


def test_an_alpha_channel_with_nothing_cut_out_fails():
    opaque = open_image(cal.png(cal.opaque_rgba(cal.cutout())))
    result = transparency_check(opaque, SETTINGS.transparency_min_share)
    assert result.status == FAILED and result.score == 0.0
    assert result.reason and "not cut out" in result.reason


def _jpeg(image: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def test_delivered_as_asked_checks_size_format_and_count():
    picture = cal.poster()
    ask = Ask(size="1024x1024", output_format="png", n=1)
    assert delivery_check([cal.png(picture)], ask).status == PASSED
    wrong = delivery_check([_jpeg(picture.resize((1024, 1536)))] * 2, ask)
    assert wrong.status == FAILED
    assert wrong.reason is not None
    assert "asked 1 image(s), got 2" in wrong.reason
    assert "asked 1024x1024, got 1024x1536" in wrong.reason
    assert "asked PNG, got JPEG" in wrong.reason


def test_an_aspect_ratio_is_met_within_rounding():
    ask = Ask(size="3:4", n=1)
    assert delivery_check([cal.png(cal.poster().resize((896, 1200)))], ask).status == PASSED
    assert delivery_check([cal.png(cal.poster())], ask).status == FAILED


def test_repeats_of_one_picture_are_alike_and_unrelated_ones_are_not():
    poster = cal.poster()
    same = similarity(fingerprint(poster), fingerprint(open_image(cal.png(poster))))
    speckled = similarity(fingerprint(poster), fingerprint(cal.noisy(poster, coverage=0.2)))
    unrelated = similarity(fingerprint(poster), fingerprint(cal.product_photo()))
    assert same == 1.0
    assert speckled >= SETTINGS.repeat_min_similarity
    assert unrelated < SETTINGS.repeat_min_similarity
    assert mean_similarity([poster]) is None
    pair = mean_similarity([poster, cal.product_photo()])
    assert pair is not None and pair < 0.5
