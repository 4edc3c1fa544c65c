"""Tests for extract.decode: bytes -> text with the charset decided by the pipeline."""

from __future__ import annotations

import codecs
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govreports.extract.decode import (
    _CONTROL_RE,
    Decoded,
    DecodeError,
    _controls,
    decode,
    http_charset_from_content_type,
)

ROW = "行政许可 处理决定数量 16363"
# Characters in GBK but not in GB2312: a page labeled gb2312 must still keep them.
GBK_ONLY = "朱镕基 王堃 喆"


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>政府信息公开工作年度报告</title></head><body>{body}</body></html>"


def long_page() -> str:
    rows = "\n".join(
        f"<tr><td>第二十条第（{i}）项</td><td>行政许可</td><td>{i * 37}</td><td>本年增/减 减{i}</td></tr>"
        for i in range(400)
    )
    prose = (
        "一、总体情况。2021年，本机关共收到政府信息公开申请 1,077 件，予以公开 16363 件；"
        f"（ABC-123; x=1.5%）{GBK_ONLY}。五、存在的主要问题及改进情况。"
    )
    return page(f"<p>{prose}</p><table>{rows}</table><p>{prose}</p>")


# --- declared charsets ---------------------------------------------------------------------------


def test_utf8_with_meta_charset() -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="utf-8">')
    d = decode(text.encode("utf-8"))
    assert d == Decoded(text, "utf-8", "utf-8", "meta")


def test_gbk_bytes_with_meta_gb2312() -> None:
    text = page(f"<p>{ROW} {GBK_ONLY}</p>", '<meta charset="gb2312">')
    d = decode(text.encode("gbk"))
    assert d.text == text
    assert (d.encoding, d.declared, d.how) == ("gb18030", "gb2312", "meta")


@pytest.mark.parametrize(
    "meta",
    [
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">',
        "<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=GBK'>",
        '<meta content="text/html;charset=gbk" http-equiv="content-type" />',
        "<meta charset=gb2312>",
        '<meta charset = " GBK ">',
    ],
)
def test_meta_forms(meta: str) -> None:
    text = page(f"<p>{ROW}</p>", meta)
    d = decode(text.encode("gbk"))
    assert d.text == text
    assert d.how == "meta"
    assert d.encoding == "gb18030"
    assert d.declared in {"gb2312", "gbk"}


@pytest.mark.parametrize("label", ["gb2312", "gbk", "x-gbk", "gb_2312-80", "cp936", "euc-cn", "gb18030"])
def test_gb_family_maps_to_gb18030(label: str) -> None:
    text = page(f"<p>{ROW} {GBK_ONLY}</p>")
    d = decode(text.encode("gbk"), http_charset=label)
    assert d == Decoded(text, "gb18030", label, "http")


def test_http_charset_wins_over_meta() -> None:
    # The bytes are valid in both, so only the order decides.
    text = '<html><head><meta charset="gb2312"></head><body>plain ASCII report</body></html>'
    d = decode(text.encode("ascii"), http_charset="utf-8")
    assert d == Decoded(text, "utf-8", "utf-8", "http")


def test_http_charset_wins_over_meta_chinese() -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="utf-8">')
    d = decode(text.encode("gbk"), http_charset="GBK")
    assert d == Decoded(text, "gb18030", "gbk", "http")


def test_bad_http_charset_falls_back_to_meta() -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="gbk">')
    d = decode(text.encode("gbk"), http_charset="utf-8")
    assert d == Decoded(text, "gb18030", "gbk", "meta")


# --- no declaration / mislabeled -------------------------------------------------------------------


def test_gbk_without_declaration_long_page() -> None:
    text = long_page()
    d = decode(text.encode("gbk"))
    assert d.text == text  # exact: nothing dropped or replaced
    assert "镕" in d.text and "堃" in d.text
    assert (d.encoding, d.declared, d.how) == ("gb18030", None, "detected")


def test_gbk_without_declaration_short() -> None:
    d = decode(f"{ROW}\n{GBK_ONLY}".encode("gbk"))
    assert d.text == f"{ROW}\n{GBK_ONLY}"
    assert d.how == "detected"


def test_utf8_without_declaration() -> None:
    text = long_page()
    assert decode(text.encode("utf-8")) == Decoded(text, "utf-8", None, "detected")


def test_declared_utf8_but_gbk_bytes() -> None:
    text = page(f"<p>{ROW} {GBK_ONLY}</p>", '<meta charset="utf-8">')
    d = decode(text.encode("gbk"))
    assert d.text == text
    assert d.declared == "utf-8"
    assert d.how == "detected"
    assert d.encoding == "gb18030"


def test_declared_gbk_but_utf8_bytes() -> None:
    # UTF-8 of ROW happens to be valid gb18030 too (each run of Chinese has an even byte count), so
    # a strict decode alone would accept the wrong label and produce mojibake.
    ROW.encode("utf-8").decode("gb18030")  # the trap is real
    text = page(f"<p>{ROW}</p>", '<meta charset="gbk">')
    d = decode(text.encode("utf-8"))
    assert d == Decoded(text, "utf-8", "gbk", "detected")


def test_latin1_http_default_does_not_mangle_gbk() -> None:
    # Servers that default to ISO-8859-1 in Content-Type: every byte decodes, so it proves nothing.
    text = page(f"<p>{ROW}</p>")
    d = decode(text.encode("gbk"), http_charset="iso-8859-1")
    assert d.text == text
    assert (d.encoding, d.declared, d.how) == ("gb18030", "iso-8859-1", "detected")


def test_latin1_declaration_on_ascii_is_fine() -> None:
    text = "<html><body><p>ok</p></body></html>"
    assert decode(text.encode(), http_charset="ISO-8859-1") == Decoded(
        text, "iso8859-1", "iso-8859-1", "http"
    )


@pytest.mark.parametrize("label", ["x-foo", "", "utf-16", "base64", "rot13", "utf-7"])
def test_unknown_or_refused_http_codec_falls_through(label: str) -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="gbk">')
    d = decode(text.encode("gbk"), http_charset=label)
    assert d.text == text
    assert d.how == "meta"


def test_unknown_meta_codec_falls_through() -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="x-foo">')
    d = decode(text.encode("gbk"))
    assert d.text == text
    assert (d.encoding, d.declared, d.how) == ("gb18030", "x-foo", "detected")


def test_meta_beyond_64k_is_ignored() -> None:
    text = "<!--" + "x" * (70 * 1024) + '--><meta charset="gbk">' + ROW
    d = decode(text.encode("gbk"))
    assert d.text == text
    assert (d.declared, d.how) == (None, "detected")


# --- BOMs -------------------------------------------------------------------------------------------


def test_bom_utf8() -> None:
    text = page(f"<p>{ROW}</p>", '<meta charset="gbk">')  # the BOM beats a wrong declaration
    d = decode(codecs.BOM_UTF8 + text.encode("utf-8"), http_charset="gbk")
    assert d == Decoded(text, "utf-8", None, "bom")
    assert not d.text.startswith("\ufeff")


@pytest.mark.parametrize(
    ("codec", "bom"), [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)]
)
def test_bom_utf16(codec: str, bom: bytes) -> None:
    text = page(f"<p>{ROW} {GBK_ONLY}</p>")
    d = decode(bom + text.encode(codec))
    assert d == Decoded(text, codec, None, "bom")


def test_utf16_via_python_codec() -> None:
    text = long_page()
    d = decode(text.encode("utf-16"))  # Python writes a BOM in native order
    assert d.text == text
    assert d.how == "bom"


# --- binary and edge cases ----------------------------------------------------------------------------


def test_empty() -> None:
    assert decode(b"") == Decoded("", "utf-8", None, "detected")
    assert decode(b"", http_charset="gbk") == Decoded("", "utf-8", None, "detected")


def test_random_bytes_with_nul() -> None:
    data = os.urandom(4096) + b"\x00" + os.urandom(100)
    with pytest.raises(DecodeError, match=r"^cannot decode"):
        decode(data)


def test_png_header() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"
    with pytest.raises(DecodeError, match=r"^cannot decode"):
        decode(png + os.urandom(2000))


def test_control_characters_are_binary() -> None:
    data = bytes(range(1, 9)) * 50 + b"text"
    with pytest.raises(DecodeError, match=r"^cannot decode: binary data"):
        decode(data)


def test_few_control_characters_are_fine() -> None:
    text = ROW * 20 + "\x0b"  # one vertical tab from a Word paste
    assert decode(text.encode("utf-8")).text == text


def test_decode_error_is_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_ascii_only() -> None:
    assert decode(b"<p>16363</p>") == Decoded("<p>16363</p>", "utf-8", None, "detected")


# --- Content-Type --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/html; charset=GBK", "gbk"),
        ("text/html;charset=utf-8", "utf-8"),
        ('text/html; charset="gb2312"', "gb2312"),
        ("text/html; charset='UTF-8'", "utf-8"),
        ("text/html; Charset = gb18030 ; foo=bar", "gb18030"),
        ("text/html; charset=utf-8, text/html", "utf-8"),
        ("text/html", None),
        ("text/html; charset=", None),
        ("", None),
        (None, None),
    ],
)
def test_http_charset_from_content_type(value: str | None, expected: str | None) -> None:
    assert http_charset_from_content_type(value) == expected


@given(st.text(alphabet=st.sampled_from(
    ["\x01", "\x0b", "\x1f", "\t", "\n", "\x0c", "\r", "\x80", "\x85", "\x9f", "\xa0", "a", "<", "政", "府", "镕", "€"]
), max_size=60))
def test_control_count_on_bytes_equals_the_count_on_text(text: str) -> None:
    # The count is taken on the bytes for utf-8 and gb18030 (faster); it must equal the text's.
    for codec in ("utf-8", "gb18030", "utf-16-le"):
        assert _controls(text, text.encode(codec), codec) == len(_CONTROL_RE.findall(text))
