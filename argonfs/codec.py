"""Documents <-> JSON bytes and ``_id`` <-> file names.  Pure functions, no I/O.

Rendering is MongoDB Extended JSON in relaxed mode, indented two spaces, keys in
document order, with a trailing newline.  One formatter (orjson) writes every byte, and
values plain JSON cannot hold are handed to ``bson.json_util`` through orjson's
``default`` hook, so the same document always renders to the same bytes.

One deliberate departure from relaxed mode keeps round trips exact: an ``Int64`` whose
value would also fit an int32 renders in canonical form (``{"$numberLong": "5"}``);
relaxed mode would print ``5`` and it would come back as an int32.  See docs/formats.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from typing import Any

import bson
import orjson
from bson import json_util
from bson.int64 import Int64
from bson.objectid import ObjectId

from argonfs.errors import DocumentTooLarge, InvalidDocument

JSON_OPTIONS = json_util.RELAXED_JSON_OPTIONS
_DUMP_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS

#: MongoDB refuses BSON documents over 16 MiB; a version record wraps the document with
#: a few hundred bytes of metadata, so a document must leave that much room.
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_DOCUMENT_SIZE = MAX_BSON_SIZE - 16 * 1024

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _ejson_default(value: Any) -> Any:
    if isinstance(value, Int64):
        if _INT32_MIN <= value <= _INT32_MAX:
            return {"$numberLong": str(int(value))}
        return int(value)
    if isinstance(value, dict):  # SON and other dict subclasses
        return dict(value)
    return json_util.default(value, JSON_OPTIONS)


def _finite(doc: Any) -> bool:
    """orjson writes NaN/Infinity as null; find them so they take the EJSON path."""
    if isinstance(doc, float):
        return math.isfinite(doc)
    if isinstance(doc, dict):
        return all(_finite(v) for v in doc.values())
    if isinstance(doc, list):
        return all(_finite(v) for v in doc)
    return True


def _replace_non_finite(doc: Any) -> Any:
    if isinstance(doc, float) and not math.isfinite(doc):
        return {"$numberDouble": str(doc).replace("inf", "Infinity").replace("nan", "NaN")}
    if isinstance(doc, dict):
        return {k: _replace_non_finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_replace_non_finite(v) for v in doc]
    return doc


def render(doc: dict[str, Any]) -> bytes:
    """Render a document as deterministic relaxed Extended JSON bytes."""
    try:
        body = orjson.dumps(doc, default=_ejson_default, option=_DUMP_OPTIONS)
    except TypeError as exc:
        raise InvalidDocument(f"cannot render document as JSON: {exc}") from None
    if b"null" in body and not _finite(doc):
        body = orjson.dumps(_replace_non_finite(doc), default=_ejson_default, option=_DUMP_OPTIONS)
    return body + b"\n"


def content_hash(rendered: bytes) -> str:
    """The hash stored with each version: blake2b-128 of the rendered bytes, hex."""
    return hashlib.blake2b(rendered, digest_size=16).hexdigest()


def _decode_ejson(value: Any) -> Any:
    if isinstance(value, dict):
        pairs = [(k, _decode_ejson(v)) for k, v in value.items()]
        if any(k.startswith("$") for k, _ in pairs):
            return json_util.object_pairs_hook(pairs, JSON_OPTIONS)
        return dict(pairs)
    if isinstance(value, list):
        return [_decode_ejson(v) for v in value]
    return value


def _has_huge_float(value: Any) -> bool:
    """orjson reads integers beyond 64 bits as floats; such floats need a second look."""
    if isinstance(value, float):
        return abs(value) >= 2**63 and value.is_integer()
    if isinstance(value, dict):
        return any(_has_huge_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_float(v) for v in value)
    return False


def _reject_huge_integers(data: bytes | str) -> None:
    def checked(text: str) -> int:
        n = int(text)
        if not -(2**63) <= n < 2**63:
            raise InvalidDocument(f"invalid JSON: integer {text} does not fit in 64 bits")
        return n

    json.loads(data, parse_int=checked)


def parse(data: bytes | str) -> dict[str, Any]:
    """Parse Extended JSON (or plain JSON) into a document, normalised through BSON.

    The result is exactly what MongoDB would store and return: ints pick int32 or
    int64 by size, datetimes are naive UTC, and so on.  Raises ``InvalidDocument``.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"invalid JSON: {exc}") from None
    if _has_huge_float(value):
        _reject_huge_integers(data)
    if not isinstance(value, dict):
        raise InvalidDocument(f"a document must be a JSON object, not {type(value).__name__}")
    try:
        doc = _decode_ejson(value)
    except (TypeError, ValueError, bson.errors.BSONError) as exc:
        raise InvalidDocument(f"invalid Extended JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidDocument("a document must be a JSON object, not an Extended JSON value")
    return normalise(doc)


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """Round-trip a document through BSON, enforcing the size limit."""
    try:
        raw = bson.encode(doc)
    except (bson.errors.InvalidDocument, OverflowError, TypeError, ValueError) as exc:
        raise InvalidDocument(f"not storable as BSON: {exc}") from None
    if len(raw) > MAX_DOCUMENT_SIZE:
        raise DocumentTooLarge(f"document is {len(raw)} bytes as BSON; the limit is {MAX_DOCUMENT_SIZE} bytes")
    return bson.decode(raw)


# --------------------------------------------------------------------------- file names
#
# ObjectId            -> 24 lowercase hex digits
# int32, or an int64 that does not fit int32 -> decimal digits
# str (when safe)     -> itself
# anything else       -> "~" + tag + payload, see docs/formats.md
#
# A name stem never contains "/" or NUL, never starts with ".", and is at most
# MAX_STEM_BYTES bytes of UTF-8, so "<stem>.json" is a valid file name.

MAX_STEM_BYTES = 200
SUFFIX = ".json"
_HEX24 = re.compile(r"[0-9a-f]{24}")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)")


def _is_plain_str(s: str) -> bool:
    return (
        s != ""
        and not s.startswith((".", "~"))
        and "/" not in s
        and "\x00" not in s
        and not _HEX24.fullmatch(s)
        and not _DECIMAL.fullmatch(s)
        and len(s.encode("utf-8", "surrogatepass")) <= MAX_STEM_BYTES
    )


def _quote(s: str) -> str:
    out = []
    for ch in s:
        if ch in "/%\x00":
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def id_to_stem(value: Any) -> str:
    """The file-name stem (name without ``.json``) of a document ``_id``."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if isinstance(value, Int64) and _INT32_MIN <= value <= _INT32_MAX:
            stem = f"~L{int(value)}"
        else:
            stem = str(int(value))
    elif isinstance(value, str):
        if _is_plain_str(value):
            return value
        stem = "~s" + _quote(value)
    else:
        stem = "~x" + _b64(bson.encode({"": value}))
    if len(stem.encode("utf-8", "surrogatepass")) > MAX_STEM_BYTES:
        digest = hashlib.sha256(bson.encode({"": value})).hexdigest()
        return "~h" + digest
    return stem


_HASHED = re.compile(r"~h[0-9a-f]{64}")


def is_hashed_stem(stem: str) -> bool:
    """Hashed stems name over-long ids; only the stored document knows the real ``_id``."""
    return stem.startswith("~h")


def stem_to_id(stem: str) -> Any:
    """Invert ``id_to_stem``.  Raises ``InvalidDocument`` for names no id maps to.

    Hashed stems cannot be inverted here; ``is_hashed_stem`` tells callers to look the
    document up by its stem instead.
    """
    if _HEX24.fullmatch(stem):
        return ObjectId(stem)
    if _DECIMAL.fullmatch(stem):
        n = int(stem)
        if not (-(2**63) <= n < 2**63):
            raise InvalidDocument(f"integer id out of range: {stem}")
        return n if _INT32_MIN <= n <= _INT32_MAX else Int64(n)
    if stem.startswith("~L") and _DECIMAL.fullmatch(stem[2:]):
        return Int64(int(stem[2:]))
    if stem.startswith("~s"):
        return _unquote(stem[2:])
    if stem.startswith("~x"):
        try:
            return bson.decode(_unb64(stem[2:]))[""]
        except (ValueError, bson.errors.BSONError, KeyError) as exc:
            raise InvalidDocument(f"invalid encoded id {stem!r}: {exc}") from None
    if is_hashed_stem(stem):
        raise InvalidDocument(f"{stem!r} is a hashed name; the id is only known from the document")
    if _is_plain_str(stem):
        return stem
    raise InvalidDocument(f"{stem!r} is not a valid document name")


def _unquote(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        return chr(int(m.group(1), 16))

    return re.sub(r"%([0-9A-F]{2})", repl, text)


def check_stem(stem: str, value: Any) -> None:
    """Raise unless ``value`` is the ``_id`` whose stem is ``stem``."""
    if id_to_stem(value) != stem:
        raise InvalidDocument(f"_id {json_util.dumps(value)} does not match the name {stem + SUFFIX!r} (expected {id_to_stem(value) + SUFFIX!r})")


def id_to_filename(value: Any) -> str:
    return id_to_stem(value) + SUFFIX


def filename_to_stem(name: str) -> str | None:
    """The stem of a ``<stem>.json`` name, or None for names that are not documents.

    Only the one name ``id_to_filename`` gives an id is a document name: ``-0.json``,
    ``007.json`` or an over-long plain stem would name an id whose file is called
    something else, so they are not documents."""
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        return None
    stem = name[: -len(SUFFIX)]
    if is_hashed_stem(stem):
        return stem if _HASHED.fullmatch(stem) else None
    try:
        canonical = id_to_stem(stem_to_id(stem))
    except InvalidDocument:
        return None
    return stem if canonical == stem else None


def is_stem(stem: object) -> bool:
    """Whether ``stem`` is the stem of a document's file name (``filename_to_stem`` of
    ``stem + SUFFIX`` is ``stem``), quickly for the usual kinds (small decimal integers,
    ObjectIds, plain strings): a listing read from a remote checks every name."""
    if type(stem) is not str:
        return False
    if _SAFE_STEM.fullmatch(stem) and (len(stem) < 19 or not stem.isdigit()):
        return True  # a plain string, an ObjectId or an integer of at most 18 digits
    return filename_to_stem(stem + SUFFIX) == stem


#: names that are stems whatever they spell, but an integer of 19 digits or more (which
#: may not fit in 64 bits): no leading ".", "-" or "~", no "/", "%" or NUL, short
_SAFE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


def is_reserved_name(name: str) -> bool:
    """A name that looks like a document (``*.json``, not a hidden temporary such as
    rsync's ``.x.json.XXXXXX``) but that no document can have: refused when created,
    so nobody believes it was stored."""
    return name.endswith(SUFFIX) and not name.startswith(".") and filename_to_stem(name) is None
