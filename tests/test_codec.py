"""The codec: rendering, parsing and file names, including property tests over BSON types."""

from __future__ import annotations

import datetime
import math
import re

import bson
import pytest
from bson import Code, Decimal128, MaxKey, MinKey, Regex, Timestamp
from bson.binary import Binary
from bson.int64 import Int64
from bson.objectid import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from argonfs import codec
from argonfs.errors import DocumentTooLarge, InvalidDocument

# ----------------------------------------------------------------------------- strategies

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
keys = texts.filter(lambda k: not k.startswith("$"))
datetimes = st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1).map(Int64)
floats = st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf, math.nan, -0.0])
decimals = st.builds(
    lambda coefficient, exponent: Decimal128(f"{coefficient}E{exponent}"),
    st.integers(-(10**34) + 1, 10**34 - 1),
    st.integers(-6176, 6111),
) | st.sampled_from([Decimal128("NaN"), Decimal128("-Infinity"), Decimal128("1E+6144"), Decimal128("0.000")])
binaries = st.builds(Binary, st.binary(max_size=20), st.sampled_from([0, 1, 2, 3, 4, 5, 6, 128])).map(lambda b: bytes(b) if b.subtype == 0 else b)
regexes = st.builds(Regex, texts, st.sampled_from(["", "i", "imsx", "lu"]))
timestamps = st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    int32s,
    int64s,
    floats,
    texts,
    datetimes,
    st.builds(ObjectId),
    decimals,
    binaries,
    regexes,
    timestamps,
    st.just(MinKey()),
    st.just(MaxKey()),
    st.builds(Code, texts),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=6)
ids = st.one_of(
    st.builds(ObjectId),
    int32s,
    int64s,
    texts,
    st.floats(allow_nan=False),
    datetimes,
    decimals,
    binaries,
    st.booleans(),
    st.none(),
    st.dictionaries(keys, scalars, max_size=3),
    st.text(min_size=150, max_size=400),
)


def bson_equal(a: dict, b: dict) -> bool:
    return bson.encode(a) == bson.encode(b)


# ----------------------------------------------------------------------------- rendering


@settings(max_examples=300, deadline=None)
@given(documents)
def test_every_bson_type_round_trips_exactly(doc: dict) -> None:
    stored = codec.normalise(doc)
    rendered = codec.render(stored)
    back = codec.parse(rendered)
    assert bson_equal(back, stored)
    assert codec.render(back) == rendered  # deterministic: same document, same bytes


def test_render_format() -> None:
    doc = {"_id": ObjectId("65a1b2c3d4e5f60718293a4b"), "n": 1, "big": Int64(5), "huge": 2**40, "é": [1.5, None]}
    text = codec.render(codec.normalise(doc)).decode()
    assert text == (
        "{\n"
        '  "_id": {\n    "$oid": "65a1b2c3d4e5f60718293a4b"\n  },\n'
        '  "n": 1,\n'
        '  "big": {\n    "$numberLong": "5"\n  },\n'
        '  "huge": 1099511627776,\n'
        '  "\u00e9": [\n    1.5,\n    null\n  ]\n'
        "}\n"
    )


def test_keys_keep_document_order() -> None:
    doc = {"z": 1, "a": 2, "m": {"y": 1, "b": 2}}
    assert list(codec.parse(codec.render(doc))) == ["z", "a", "m"]
    assert codec.render(doc).index(b'"z"') < codec.render(doc).index(b'"a"')


def test_int_sizes_survive() -> None:
    back = codec.parse(codec.render(codec.normalise({"a": 5, "b": Int64(5), "c": 2**40})))
    assert type(back["a"]) is int and isinstance(back["b"], Int64) and isinstance(back["c"], Int64)


def test_parse_plain_json_and_extended_json() -> None:
    doc = codec.parse(b'{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "when": {"$date": "2020-01-02T03:04:05.678Z"}, "x": 1}')
    assert doc["_id"] == ObjectId("65a1b2c3d4e5f60718293a4b")
    assert doc["when"] == datetime.datetime(2020, 1, 2, 3, 4, 5, 678000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"{", "invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"$oid": "65a1b2c3d4e5f60718293a4b"}', "not an Extended JSON value"),
        (b'{"a": {"$date": "yesterday"}}', "invalid Extended JSON"),
        (b'{"a": 123456789012345678901234567890}', "invalid JSON"),
    ],
)
def test_parse_rejects_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        codec.parse(data)


def test_oversized_document_is_rejected() -> None:
    with pytest.raises(DocumentTooLarge, match="limit"):
        codec.normalise({"blob": "x" * (codec.MAX_BSON_SIZE)})


# ----------------------------------------------------------------------------- file names

_BAD = re.compile(r"[/\x00]")


@settings(max_examples=400, deadline=None)
@given(ids)
def test_id_names_are_valid_and_reversible(value) -> None:
    value = codec.normalise({"_id": value})["_id"]
    stem = codec.id_to_stem(value)
    name = stem + codec.SUFFIX
    assert not _BAD.search(name) and not name.startswith(".")
    assert len(name.encode("utf-8")) <= 255
    assert codec.filename_to_stem(name) == stem
    if codec.is_hashed_stem(stem):
        assert len(bson.encode({"": value})) > 100
    else:
        assert bson_equal({"": codec.stem_to_id(stem)}, {"": value})


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, min_size=2, max_size=8))
def test_distinct_ids_get_distinct_names(values: list) -> None:
    normalised = [codec.normalise({"_id": v})["_id"] for v in values]
    by_bson = {bson.encode({"": v}): codec.id_to_stem(v) for v in normalised}
    assert len(set(by_bson.values())) == len(by_bson)


@pytest.mark.parametrize(
    "value, stem",
    [
        (ObjectId("65a1b2c3d4e5f60718293a4b"), "65a1b2c3d4e5f60718293a4b"),
        ("ada", "ada"),
        ("hello world.txt", "hello world.txt"),
        (42, "42"),
        (-7, "-7"),
        (2**40, "1099511627776"),
        (Int64(5), "~L5"),
        ("42", "~s42"),
        ("65a1b2c3d4e5f60718293a4b", "~s65a1b2c3d4e5f60718293a4b"),
        ("a/b", "~sa%2Fb"),
        ("50%", "50%"),
        ("..", "~s.."),
        (".hidden", "~s.hidden"),
        ("~tilde", "~s~tilde"),
        ("", "~s"),
    ],
)
def test_readable_names(value, stem: str) -> None:
    assert codec.id_to_stem(value) == stem
    assert bson_equal({"": codec.stem_to_id(stem)}, {"": value})


def test_long_ids_are_hashed_and_still_distinct() -> None:
    a, b = "x" * 300, "x" * 299 + "y"
    assert codec.is_hashed_stem(codec.id_to_stem(a))
    assert codec.id_to_stem(a) != codec.id_to_stem(b)
    with pytest.raises(InvalidDocument, match="hashed"):
        codec.stem_to_id(codec.id_to_stem(a))


@pytest.mark.parametrize("name", ["x.txt", ".json", "~zzz.json", "~L1x.json", ".hidden.json", "~xnot-base64!.json"])
def test_names_that_are_not_documents(name: str) -> None:
    assert codec.filename_to_stem(name) is None


def test_check_stem_names_the_mismatch() -> None:
    with pytest.raises(InvalidDocument, match=r"does not match the name 'b.json'"):
        codec.check_stem("b", "a")


@settings(max_examples=500)  # about 5 s: the regexes are slow to draw from
@given(
    st.one_of(
        st.text(),
        st.integers().map(str),
        st.from_regex(r"-?0*[0-9]{1,20}", fullmatch=True),
        st.from_regex(r"[0-9a-fA-F]{23,25}", fullmatch=True),
        st.from_regex(r"~[sLxh][0-9a-zA-Z%/_=-]{0,70}", fullmatch=True),
        st.sampled_from([".", "", "..", "a/b", "a\x00b", "-0", "007", "~L5", "x" * 201]),
    )
)
def test_is_stem_is_what_filename_to_stem_says(stem: str) -> None:
    """The quick check a remote listing makes of every name agrees with the one rule."""
    assert codec.is_stem(stem) == (codec.filename_to_stem(stem + codec.SUFFIX) == stem)


def test_is_stem_of_what_is_not_a_string() -> None:
    assert not any(codec.is_stem(value) for value in (7, None, b"7", ["7"]))
