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

#: How deep arrays and objects may nest in a request body (an API batch needs 4).
MAX_JSON_DEPTH = 64

# A JSON string (or an unterminated one, to the end of the text). Possessive, so an
# unterminated string is scanned once, never again from each later quote.
_STRING_RE = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKET_RE = re.compile(rb"[^\[\]{}]++")


class JSONTooDeep(ValueError):
    def __init__(self, max_depth: int):
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


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


def json_loads_bounded(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads`` that refuses (``JSONTooDeep``, a ``ValueError``) a text nested
    deeper than ``max_depth``, before parsing it."""
    if json_depth_exceeds(raw, max_depth):
        raise JSONTooDeep(max_depth)
    try:
        return json.loads(raw)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JSONTooDeep(max_depth) from None


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
