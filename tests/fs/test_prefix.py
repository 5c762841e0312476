"""The incremental syntax check of documents written through the mount (fs/prefix.py),
against orjson, which reads them at close (codec.parse)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from argonfs import codec
from argonfs.errors import InvalidDocument
from argonfs.fs.prefix import JsonPrefix

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
documents = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def feed_in_pieces(data: bytes, cuts: list[int]) -> tuple[bool, JsonPrefix]:
    prefix = JsonPrefix()
    at = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if not prefix.feed(data[at:cut]):
            return False, prefix
        at = cut
    return True, prefix


@given(documents, st.sampled_from([orjson.OPT_INDENT_2, 0]), st.lists(st.integers(0, 10_000), max_size=6))
def test_every_document_passes_however_it_is_cut(doc, option, cuts):
    data = orjson.dumps(doc, option=option) + b"\n"
    ok, prefix = feed_in_pieces(data, cuts)
    assert ok, prefix.error


@given(documents, st.binary(max_size=6), st.integers(0, 10_000), st.lists(st.integers(0, 10_000), max_size=4))
def test_a_refused_prefix_has_no_valid_ending(doc, noise, at, cuts):
    """Bytes spliced into a document: when the check refuses them, the close would refuse
    the file too, and any longer file starting the same way (no false refusals)."""
    data = orjson.dumps(doc)
    at %= len(data) + 1
    spoiled = data[:at] + noise + data[at:]
    ok, prefix = feed_in_pieces(spoiled, cuts)
    if ok:
        return
    assert prefix.error
    for ending in (b"", data, b"}", b'"}', b"]}", b"0}", b"e}", b"}}", b'":1}'):
        with pytest.raises(InvalidDocument):
            codec.parse(spoiled + ending)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"{bad", 1),
        (b"[1, 2]", 0),
        (b'{"a": 01}', 6),
        (b'{"a": 1,}', 8),
        (b'{"a": NaN}', 6),
        (b'{"a": 1} x', 9),
        (b'{"a": "\t"}', 6),
        (b"\xef\xbb\xbf{}", 0),
        (b'{"a" 1}', 5),
        (b'{"a": tru}', 6),
    ],
)
def test_refusals_name_the_byte(data, where):
    ok, prefix = feed_in_pieces(data, [3, 7])
    assert not ok
    assert f"at byte {where}:" in (prefix.error or "")
    with pytest.raises(InvalidDocument):
        codec.parse(data)


@pytest.mark.parametrize("data", [b'{"a": -', b'{"a": 1.', b'{"a": 1e+', b'{"a": "x\\u00', b'{"a": fal', b'  {"a": [1, {"b": null}', b"{"])
def test_cut_tokens_wait_for_the_next_write(data):
    prefix = JsonPrefix()
    assert prefix.feed(data), prefix.error
    assert prefix.fed == len(data)
