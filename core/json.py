"""JSON bodies with a bounded nesting depth.

A body of 100,000 nested arrays makes ``json.loads`` (and everything that walks
the result afterwards) raise ``RecursionError``. The depth is measured on the raw
text first — brackets inside strings do not count — and a deeper body is refused
before it is parsed: 400 ``malformed_request`` in the API, the same answer as for
any other body that is not JSON on the operator pages.
"""

import io
import json
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .validation import bad_text_path

#: How deep arrays and objects may nest in a request body (an API batch needs 4).
MAX_JSON_DEPTH = 64

# A JSON string (or an unterminated one, to the end of the text). Possessive, so an
# unterminated string is scanned once, never again from each later quote.
_STRING_RE = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKET_RE = re.compile(rb"[^\[\]{}]++")


class JSONTooDeep(json.JSONDecodeError):
    """A ``ValueError`` (and a ``JSONDecodeError``, which Django's form fields catch)."""

    def __init__(self, max_depth: int):
        super().__init__(f"JSON nested deeper than {max_depth} levels", "", 0)
        self.max_depth = max_depth


class JSONBadText(json.JSONDecodeError):
    def __init__(self, path: str):
        super().__init__(f"NUL character or unpaired surrogate in the text (at {path or 'the top'})", "", 0)


def json_depth_exceeds(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``max_depth``."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    brackets = _NOT_BRACKET_RE.sub(b"", _STRING_RE.sub(b'""', raw))
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def json_loads_bounded(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH, *, clean_text: bool = False):
    """``json.loads`` that refuses (``JSONTooDeep``, a ``ValueError``) a text nested
    deeper than ``max_depth``, before parsing it; with ``clean_text``, also a text whose
    strings hold a NUL or an unpaired surrogate (``JSONBadText``, a ``ValueError``)."""
    if json_depth_exceeds(raw, max_depth):
        raise JSONTooDeep(max_depth)
    try:
        value = json.loads(raw)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JSONTooDeep(max_depth) from None
    if clean_text and (where := bad_text_path(value)) is not None:
        raise JSONBadText(where)
    return value


class BoundedJSONDecoder(json.JSONDecoder):
    """A ``json.JSONDecoder`` for form fields that take one (``forms.JSONField(decoder=...)``):
    a text nested deeper than ``MAX_JSON_DEPTH``, or holding a NUL or an unpaired surrogate
    once decoded, is a ``JSONDecodeError`` — the field reports it as invalid JSON, and
    re-renders the text as typed (a surrogate could not even be encoded into the page)."""

    def decode(self, s, *args, **kwargs):
        if json_depth_exceeds(s):
            raise JSONTooDeep(MAX_JSON_DEPTH)
        value = super().decode(s, *args, **kwargs)
        where = bad_text_path(value)
        if where is not None:
            raise JSONBadText(where)
        return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the depth bound: a deeper body is a ``ParseError``
    (400 ``malformed_request`` in the error shape)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if json_depth_exceeds(raw):
            raise ParseError(f"JSON parse error - the body is nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # pragma: no cover - the depth check comes first
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
