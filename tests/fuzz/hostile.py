"""The hostile-input profile the OpenAPI fuzz run mixes into what schemathesis generates.

Schemathesis builds cases that follow the schema; a careless or hostile client does
not. This module turns a generated case into a hostile one, the way issue 9 found the
server errors: it swaps string and number leaves of the body, the path parameters and
the query for the values below, adds hostile keys to objects, and sends bodies that no
JSON encoder would write (deep nesting, numbers outside float, invalid UTF-8).

Everything here is a plain hypothesis strategy or a constant, so the profile reads as
a list of what a client may throw at the API.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import strategies as st


class Raw(str):
    """A JSON token (or a URL piece) sent exactly as written: ``1e999999`` is not a float
    Python can hold and ``a%00b`` must reach the server percent-encoded once, not twice."""


# Instants at the edges of what the database and the operator's time zone can show,
# the common "never" placeholders, and Unix-time integers for timestamp fields.
EDGE_INSTANTS = [
    "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    "9999-12-31T23:59:59Z",  # "never": past year 9999 in Asia/Shanghai
    "9999-12-31T23:59:59.999999+00:00",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2100-01-01T00:00:00+00:00",
    "2026-02-30T00:00:00Z",  # no such day
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00",  # naive
    "9999-12-31",
    "0000-00-00T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "1e10",
]
UNIX_TIMES = [0, -1, 253402300800, -62135596800, 2**31, 2**63, 10**20]

# Strings: NUL, lone surrogates (json.dumps writes them as the ``\udc00`` escape, as a
# client's encoder would), control and bidi characters, numbers-in-strings past any
# column, formula prefixes, and sizes past every column.
HOSTILE_STRINGS = [
    "\x00",
    "a\x00b",
    "\udc00",
    "a\ud800b",
    "\ud83d",
    "\x00\udc00",
    "\ufeff",
    "\u202e",
    "\r\n",
    "",
    " ",
    "1e999999",
    "-1e999999",
    "1e308",
    "NaN",
    "Infinity",
    "-0",
    "99999999999999999999999999999999",
    "0.0000000000000000000000000000001",
    '=HYPERLINK("http://x","click")',
    "%00",
    "../../etc/passwd",
    "x" * 200_000,
    *EDGE_INSTANTS,
]

# Number tokens written into the JSON text as they are.
HOSTILE_NUMBERS = [
    Raw("1e999999"),
    Raw("-1e999999"),
    Raw("1e308"),
    Raw("-0"),
    Raw("1e-400"),
    Raw("9223372036854775808"),
    Raw("-9223372036854775809"),
    Raw("2147483648"),
    Raw("1" * 5000),
    Raw("0.1e1"),
    *UNIX_TIMES,
]

# Values of other JSON types where a string, a number or an object is expected.
HOSTILE_TYPES = [None, True, [], {}, ["city"], {"eq": 1}, [None], 1.5]

# Object keys.
HOSTILE_KEYS = ["\x00", "a\x00b", "\udc00", "", "x" * 10_000, "__proto__"]

# Path parameters, already URL-encoded (Raw) or to be percent-encoded.
HOSTILE_PATH_PARAMETERS = [
    Raw("a%00b"),
    Raw("%00"),
    Raw("%ED%B0%80"),  # a lone surrogate, UTF-8 encoded
    Raw("%FF%FE"),  # not UTF-8
    Raw("a%2Fb"),
    "99999999999999999999",
    "-1",
    "0",
    "1e999999",
    "x" * 5_000,
    " ",
]

# Whole query values, already URL-encoded.
HOSTILE_QUERY_VALUES = [
    Raw("%00"),
    Raw("a%00b"),
    Raw("%ED%B0%80"),
    Raw("%FF"),
    Raw("cD1hYmM%3D"),  # a cursor that decodes to "p=abc"
    Raw("cD0tMQ%3D%3D"),  # "p=-1"
    Raw("cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk%3D"),  # "p=99999999999999999999"
    Raw("%3D%3D%3D"),
    "99999999999999999999",
    "-1",
    "1e999999",
    *EDGE_INSTANTS,
]

DEPTH = 100_000


def raw_bodies() -> dict[str, bytes]:
    """Bodies no JSON encoder writes, sent to every POST operation: each must be a 4xx."""
    deep_arrays = "[" * DEPTH + "]" * DEPTH
    deep_objects = '{"a":' * DEPTH + "1" + "}" * DEPTH
    return {
        "deep arrays": deep_arrays.encode(),
        "deep objects": deep_objects.encode(),
        "deep arrays in items": ('{"items": ' + deep_arrays + "}").encode(),
        "deep properties in an event": (
            '{"items": [{"customer": "fz-1", "type": "login", "occurred_at": "2026-01-01T00:00:00Z",'
            ' "properties": ' + deep_objects + "}]}"
        ).encode(),
        "number past float": b"1e999999",
        "number past float in items": b'{"items": [1e999999]}',
        "lone surrogate escape": b'{"items": [{"external_id": "fz-1", "name": "\\udc00"}], "reason": "\\ud800"}',
        "NUL escape in a key": b'{"items": [{"\\u0000": 1}], "\\u0000": 1}',
        "invalid UTF-8": b'{"items": [{"external_id": "fz-1", "name": "\xff\xfe"}]}',
        "NaN": b'{"items": [{"amount": NaN}], "amount": NaN}',
        "duplicate keys": b'{"items": [], "items": {"a": 1}}',
        "not JSON": b"\x00\x01\x02",
        "empty": b"",
        "huge array": ("[" + ",".join(["0"] * 300_000) + "]").encode(),
        "over the size limit": b'{"items": ["' + b"x" * (11 * 1024 * 1024) + b'"]}',
    }


def dumps(value) -> bytes:
    """JSON text of ``value``, writing :class:`Raw` tokens as they are (and lone
    surrogates as escapes, like every ASCII-safe encoder)."""
    if isinstance(value, Raw):
        return str(value).encode()
    if isinstance(value, bytes):  # a body schemathesis made as bytes: sent as it is
        return value
    if isinstance(value, dict):
        parts = [json.dumps(str(k)).encode() + b":" + dumps(v) for k, v in value.items()]
        return b"{" + b",".join(parts) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(dumps(v) for v in value) + b"]"
    return json.dumps(value).encode()


def encode_path_parameter(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def encode_query(query: dict) -> str:
    pieces = []
    for key, value in (query or {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "true" if v else "false"
            encoded = str(v) if isinstance(v, Raw) else quote(str(v).encode("utf-8", "surrogatepass"), safe="")
            pieces.append(f"{quote(str(key), safe='')}={encoded}")
    return "&".join(pieces)


# ---- strategies -------------------------------------------------------------------

# How often a leaf is swapped: 1 in RATE (and a whole case is left as generated 1 in 4).
RATE = 4
_strings = st.sampled_from(HOSTILE_STRINGS)
_leaf = st.one_of(_strings, st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_TYPES))


def _ids_for(key: str, known: dict[str, list]) -> list:
    if key in ("customer", "external_id"):
        return known.get("external_id", [])
    return known.get(key, [])


@st.composite
def _mutate(draw, value, known: dict[str, list], key: str = ""):
    """``value`` with some leaves swapped for hostile ones; ids of known rows put into
    ``customer``/``external_id`` fields so that writes reach real customers."""
    ids = _ids_for(key, known)
    if ids and isinstance(value, str) and draw(st.integers(0, 2)) > 0:
        return draw(st.sampled_from(ids))
    if isinstance(value, dict):
        out = {k: draw(_mutate(v, known, k)) for k, v in value.items()}
        if draw(st.integers(0, RATE * 3)) == 0:
            out[draw(st.sampled_from(HOSTILE_KEYS))] = draw(_leaf)
        if key == "properties" and draw(st.integers(0, RATE)) == 0:
            out[draw(_strings)] = draw(_strings)
        return out
    if isinstance(value, list):
        return [draw(_mutate(v, known, key)) for v in value]
    if draw(st.integers(0, RATE)) == 0:
        if isinstance(value, str):
            return draw(st.one_of(_strings, _strings, _leaf))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return draw(st.one_of(st.sampled_from(HOSTILE_NUMBERS), _strings))
        return draw(_leaf)
    return value


@st.composite
def hostile_body(draw, body, known: dict[str, list]):
    if draw(st.integers(0, 3)) == 0:  # one case in four as schemathesis made it
        return body
    return draw(_mutate(body, known))


@st.composite
def hostile_path_parameters(draw, params: dict, known: dict[str, list]):
    out = {}
    for name, value in (params or {}).items():
        choice = draw(st.integers(0, 3))
        ids = known.get(name, [])
        if ids and choice <= 1:
            out[name] = draw(st.sampled_from(ids))
        elif choice == 2:
            out[name] = draw(st.sampled_from([*HOSTILE_PATH_PARAMETERS, *HOSTILE_STRINGS[:6]]))
        else:
            out[name] = Raw(value)  # schemathesis has percent-encoded it already
    return out


@st.composite
def hostile_query(draw, query: dict, known: dict[str, list]):
    out = {}
    for name, value in (query or {}).items():
        choice = draw(st.integers(0, 3))
        ids = known.get(name, [])
        if ids and choice == 0:
            out[name] = draw(st.sampled_from(ids))
        elif choice == 1:
            out[name] = draw(st.sampled_from([*HOSTILE_QUERY_VALUES, *HOSTILE_STRINGS[:6]]))
        else:
            out[name] = value
    return out


# ---- sweeps: every hostile value once in every place, whatever the random run drew -----

PATH_SWEEP = [*HOSTILE_PATH_PARAMETERS, *HOSTILE_STRINGS[:6]]
QUERY_SWEEP = [*HOSTILE_QUERY_VALUES, *HOSTILE_STRINGS[:6], *HOSTILE_STRINGS[11:19]]
STRING_SWEEP = [*HOSTILE_STRINGS[:6], *HOSTILE_STRINGS[10:19], "x" * 200_000, *EDGE_INSTANTS, 0, None, ["city"]]
NUMBER_SWEEP = [*HOSTILE_NUMBERS, "1e999999", "\x00", None, {"eq": 1}]
OTHER_SWEEP = ["\x00", "yes", 1, None, {"eq": 1}, [None]]


def sweep_values(leaf) -> list:
    """What the sweep puts in place of ``leaf``: hostile values of its own type first."""
    if isinstance(leaf, str):
        return STRING_SWEEP
    if isinstance(leaf, int | float) and not isinstance(leaf, bool):
        return NUMBER_SWEEP
    return OTHER_SWEEP


def leaves(value, at=()):
    """Paths to every leaf of a JSON value (an empty object or list counts as a leaf)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, (*at, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from leaves(v, (*at, i))
    else:
        yield at


def objects(value, at=()):
    """Paths to every object of a JSON value (places for a hostile key)."""
    if isinstance(value, dict):
        yield at
        for k, v in value.items():
            yield from objects(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from objects(v, (*at, i))


def replaced(value, at, new):
    """A copy of ``value`` with what is at path ``at`` swapped for ``new``."""
    if not at:
        return new
    head, *rest = at
    if isinstance(value, dict):
        return {k: (replaced(v, tuple(rest), new) if k == head else v) for k, v in value.items()}
    return [replaced(v, tuple(rest), new) if i == head else v for i, v in enumerate(value)]


def with_key(value, at, key):
    """A copy of ``value`` whose object at path ``at`` has one more key, ``key``."""
    if not at:
        return {**value, key: "x"}
    head, *rest = at
    if isinstance(value, dict):
        return {k: (with_key(v, tuple(rest), key) if k == head else v) for k, v in value.items()}
    return [with_key(v, tuple(rest), key) if i == head else v for i, v in enumerate(value)]


# ---- the bodies the sweep starts from ------------------------------------------------

_ROW_CUSTOMER = {
    "external_id": "fz-2",
    "name": "Fuzz Two",
    "nickname": "fz2",
    "phone": "13800000002",
    "email": "fz2@example.com",
    "gender": "unknown",
    "birthday": "1990-01-01",
    "city": "上海",
    "timezone": "Asia/Shanghai",
    "signup_at": "2026-01-01T00:00:00Z",
    "channel": "app",
    "referred_by": "fz-1",
    "tags": ["vip"],
    "consent": {"push": True, "sms": True, "email": False, "wechat": None, "in_app": True},
    "do_not_contact": False,
}

# One accepted body per write operation, with every field its schema has: the sweep
# swaps each leaf (and adds a hostile key to each object) in turn. A batch has one row
# so a refused row is the only row. ``{known}`` operations get the seeded ids.
VALID_BODIES = {
    "/api/v1/customers/batch": {"items": [_ROW_CUSTOMER], "atomic": False},
    "/api/v1/events/batch": {
        "items": [
            {
                "customer": "fz-1",
                "type": "login",
                "occurred_at": "2026-03-01T08:00:00Z",
                "properties": {"page": "home", "n": 1, "nested": {"a": [1, "b"]}},
                "external_id": "fz-ev-1",
            }
        ],
        "atomic": False,
    },
    "/api/v1/orders/batch": {
        "items": [
            {
                "external_id": "fz-o-1",
                "customer": "fz-1",
                "amount": "99.00",
                "currency": "CNY",
                "status": "paid",
                "occurred_at": "2026-03-01T08:00:00Z",
            }
        ],
        "atomic": False,
    },
    "/api/v1/points/entries": {
        "customer": "fz-1",
        "kind": "earn",
        "amount": 10,
        "reason": "fuzz",
        "idempotency_key": "fz-k-1",
    },
    "/api/v1/points/entries/batch": {
        "items": [{"customer": "fz-1", "kind": "earn", "amount": 10, "reason": "fuzz", "idempotency_key": "fz-k-2"}],
        "atomic": False,
    },
    "/api/v1/rewards/{reward_id}/redeem": {"customer": "fz-1", "idempotency_key": "fz-r-2"},
    "/api/v1/customers/{external_id}/unsubscribe": {"channel": "sms"},
}


FRESH_KEYS = {"idempotency_key", "external_id"}


def fresh(body, n: int, keep_at=(), *, keys=FRESH_KEYS, at=()):
    """``body`` with its idempotency keys (and row ids) made unique by ``-n``, so that a
    swept request is not answered as a replay of the base — except the leaf being swept."""
    if isinstance(body, dict):
        return {
            k: (
                f"{v}-{n}"
                if k in keys and isinstance(v, str) and type(v) is str and (*at, k) != tuple(keep_at)
                else fresh(v, n, keep_at, keys=keys, at=(*at, k))
            )
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [fresh(v, n, keep_at, keys=keys, at=(*at, i)) for i, v in enumerate(body)]
    return body
