"""Base64 images are decoded by pybase64: the result and the refusals must be exactly those of
the standard library's strict decode."""

from __future__ import annotations

import base64
import binascii
import os

import pytest

from routes.media import decode_base64

_SLICE = 128 * 1024  # the standard library's decode went in slices of this size once


@pytest.mark.parametrize("size", [0, 1, 2, 3, _SLICE // 4 * 3, 2_219_948])
def test_decodes_as_a_strict_decode_of_the_whole_text(size: int) -> None:
    data = os.urandom(size)
    text = base64.b64encode(data)
    assert decode_base64(text) == data
    assert decode_base64(text.decode()) == data


@pytest.mark.parametrize(
    "text",
    [
        # Padding that ends the first slice exactly: each slice alone would decode.
        "QUFB" * (_SLICE // 4 - 1) + "QQ==" + "QUFB" * 8,
        "QQ=",  # bad padding
        "QUFB QUFB",  # whitespace
        "QUFB\nQUFB",
        "QUF*",  # outside the alphabet
        "QUFBé",  # not ASCII
    ],
)
def test_refuses_what_a_strict_decode_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        base64.b64decode(text, validate=True)
    with pytest.raises(ValueError):
        decode_base64(text)


def test_refusals_are_binascii_errors_for_ascii_text() -> None:
    with pytest.raises(binascii.Error):
        decode_base64("QQ=")
