"""Whether bytes written so far can still become a document: an incremental check of a
JSON object's syntax, fed the bytes of sequential writes.

A shell ignores errors at close (``echo '{bad' > f.json`` returns 0), so the mount also
answers EINVAL from the ``write`` whose bytes make the file impossible as a document
(bash prints "write error"); the check at close stays for everything else (Extended
JSON, sizes, BSON).  The grammar is strict JSON, as orjson reads it (codec.parse): no
byte order mark, no comments, no trailing commas, no leading zeros, no NaN, no control
characters in strings.  A token cut by a write boundary is kept until the next write.
Pure, no I/O.
"""

from __future__ import annotations

import re

_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
#: what may be left of a string at the end of the bytes written so far
_STRING_START = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*(?:\\(?:u[0-9a-fA-F]{0,3})?)?')
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_CHARS = re.compile(rb"[-+.eE0-9]*")
_LITERALS = (b"true", b"false", b"null")

# what comes next
_TOP, _KEY_OR_CLOSE, _KEY, _COLON, _VALUE, _VALUE_OR_CLOSE, _NEXT, _DONE = range(8)


class JsonPrefix:
    """Fed the bytes of a file in order; ``feed`` answers False from the first bytes that
    no continuation can turn into one JSON object (then ``error`` says why)."""

    __slots__ = ("_expect", "_pending", "_stack", "error", "fed")

    def __init__(self) -> None:
        self._stack: list[int] = []  # ord("{") or ord("[") per open container
        self._expect = _TOP
        self._pending = b""
        #: bytes fed so far
        self.fed = 0
        self.error: str | None = None

    def feed(self, data: bytes) -> bool:
        if self.error is not None:
            return False
        buf = self._pending + data
        start = self.fed - len(self._pending)
        self.fed += len(data)
        self._pending = b""
        i = 0
        end = len(buf)
        while True:
            i = _WS.match(buf, i).end()  # type: ignore[union-attr]
            if i == end:
                return True
            c = buf[i]
            if self._expect == _DONE:
                return self._fail(start + i, "bytes after the document's closing brace")
            if c == 0x22:  # '"'
                m = _STRING.match(buf, i)
                if m is None:
                    rest = _STRING_START.match(buf, i)
                    if rest is not None and rest.end() == end and self._allows_string():
                        self._pending = buf[i:]
                        return True
                    return self._fail(start + i, "a string that cannot be valid JSON")
                if not self._string():
                    return self._fail(start + i, "a string where none may stand")
                i = m.end()
            elif c in b"-0123456789":
                run = _NUMBER_CHARS.match(buf, i).end()  # type: ignore[union-attr]
                token = buf[i:run]
                if run == end:  # the number may go on in the next write
                    if (_NUMBER.fullmatch(token) or _NUMBER.fullmatch(token + b"0")) and self._allows_value():
                        self._pending = token
                        return True
                    return self._fail(start + i, "an invalid number")
                if not _NUMBER.fullmatch(token):
                    return self._fail(start + i, "an invalid number")
                if not self._scalar():
                    return self._fail(start + i, "a value where none may stand")
                i = run
            elif c in b"tfn":
                word = next((w for w in _LITERALS if w[0] == c), b"")
                piece = buf[i : i + len(word)]
                if not word.startswith(piece):
                    return self._fail(start + i, "an unknown word")
                if len(piece) < len(word):  # cut by the end of the write
                    if not self._allows_value():
                        return self._fail(start + i, "a value where none may stand")
                    self._pending = piece
                    return True
                if not self._scalar():
                    return self._fail(start + i, "a value where none may stand")
                i += len(word)
            elif not self._punctuation(c):
                return self._fail(start + i, f"unexpected {chr(c)!r}" if 0x20 < c < 0x7F else f"unexpected byte 0x{c:02x}")
            else:
                i += 1

    def _fail(self, at: int, why: str) -> bool:
        self.error = f"not a JSON document at byte {at}: {why}"
        return False

    def _allows_value(self) -> bool:
        return self._expect in (_VALUE, _VALUE_OR_CLOSE)

    def _allows_string(self) -> bool:
        return self._expect in (_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE)

    def _string(self) -> bool:
        if self._expect in (_KEY, _KEY_OR_CLOSE):
            self._expect = _COLON
            return True
        return self._scalar()

    def _scalar(self) -> bool:
        if not self._allows_value():
            return False
        self._expect = _NEXT
        return True

    def _closed(self) -> None:
        self._expect = _NEXT if self._stack else _DONE

    def _punctuation(self, c: int) -> bool:
        expect = self._expect
        if c == 0x7B:  # '{'
            if expect not in (_TOP, _VALUE, _VALUE_OR_CLOSE):
                return False
            self._stack.append(c)
            self._expect = _KEY_OR_CLOSE
        elif c == 0x5B:  # '['
            if not self._allows_value():
                return False
            self._stack.append(c)
            self._expect = _VALUE_OR_CLOSE
        elif c in (0x7D, 0x5D):  # '}' ']'
            opener = 0x7B if c == 0x7D else 0x5B
            if not self._stack or self._stack[-1] != opener:
                return False
            if expect not in (_NEXT, _KEY_OR_CLOSE if opener == 0x7B else _VALUE_OR_CLOSE):
                return False
            self._stack.pop()
            self._closed()
        elif c == 0x3A:  # ':'
            if expect != _COLON:
                return False
            self._expect = _VALUE
        elif c == 0x2C:  # ','
            if expect != _NEXT:
                return False
            self._expect = _KEY if self._stack[-1] == 0x7B else _VALUE
        else:
            return False
        return True
