"""Custom segment definitions: validation and compilation to one query.

A definition is a tree of AND/OR groups over conditions::

    {"op": "and", "conditions": [
        {"field": "stage", "op": "in", "value": ["mature", "growing"]},
        {"field": "r_score", "op": "gte", "value": 4},
        {"field": "tag", "op": "has", "value": "vip"},
        {"op": "or", "conditions": [
            {"field": "points_balance", "op": "gte", "value": 1000},
            {"field": "event", "event_type": "checkin", "op": "gte", "value": 3, "within_days": 7}
        ]},
        {"field": "orders", "op": "gte", "value": 1, "from": "2026-01-01", "to": "2026-03-31"},
        {"field": "community", "op": "in", "value": ["runners"], "role": "koc"}
    ]}

``compile_definition`` turns it into a ``Q`` over ``Customer`` whose subqueries
read the published run's scores, tags, points, events and orders — the whole
segment is one SQL statement. Every error names the path of the bad part.

Community membership: ``community`` with ``eq``/``in`` selects the customers who are
in the group(s) now (an open span: ``left_at`` empty), ``ne``/``not_in`` those who are
not; an optional ``role`` (one role or a list) narrows that to members holding it.
Segments sits below communities and does not import it: the groups and roles are
registered from above (``community_groups_register``, wired in ``console.apps``), and
the condition reads ``Customer.community_memberships`` through the ORM. An unknown
group code or role is refused, naming both what was given and what is known.

Dates: a plain date ("2026-03-01") is that day in the operators' timezone
(``OPS_DEFAULT_CUSTOMER_TIMEZONE``, the one the pages show times in): as a lower
bound its first instant, as an upper bound ('to', ``lte``, the top of ``between``)
all of it, and ``gt`` means after it. A datetime must carry its UTC offset.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Count, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.timezones import operator_day_bounds

from .rules import CLASSES, STAGES, TIERS

MAX_DEPTH = 5
MAX_CONDITIONS = 50
# An 'in' / 'not_in' list: 300,000 values took half a minute to compile and count.
MAX_IN_VALUES = 1000
# The whole definition, serialized as JSON (UTF-8): a few hundred conditions' worth.
MAX_DEFINITION_BYTES = 64 * 1024
# JSON nesting (objects and lists) read at all; the group depth (MAX_DEPTH) is checked
# with its own message, this only stops an absurd body before anything recurses into it.
MAX_JSON_NESTING = 64
MAX_TEXT = 100

# Instants a definition may name: the range every stored instant lies in (issue 9:
# 1970-01-01 to 2100-01-01 UTC, both included). Kept here rather than imported so that
# definitions stand alone; the same range as core.validation's INSTANT_MIN/INSTANT_MAX.
INSTANT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_MAX = datetime(2100, 1, 1, tzinfo=UTC)
DATE_MIN, DATE_MAX = INSTANT_MIN.date(), INSTANT_MAX.date()

# What the columns compared with hold (a larger number is refused, not sent to the database,
# where it would overflow the parameter's type: DataError on PostgreSQL).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
DECIMAL_14_2_MAX = Decimal("999999999999.99")  # decimal(14, 2): |x| < 10^12
DECIMAL_16_2_MAX = Decimal("99999999999999.99")  # decimal(16, 2): |x| < 10^14


@dataclass(frozen=True)
class Field:
    kind: str  # int, float, decimal, str, choice, bool, datetime
    source: str  # profile, score, points, level, tag, event, orders, community
    column: str
    choices: tuple = ()
    minimum: float | None = None  # the field's own range (a score is 1 to 5)
    maximum: float | None = None
    # Numbers: the largest magnitude the compared column (or count) holds, and for
    # decimals its decimal places. Every numeric field declares it.
    limit: int | float | Decimal | None = None
    places: int | None = None


GENDERS = ("unknown", "female", "male", "other")
FIELDS: dict[str, Field] = {
    # profile
    "gender": Field("choice", "profile", "gender", GENDERS),
    "city": Field("str", "profile", "city"),
    "channel": Field("str", "profile", "channel"),
    "timezone": Field("str", "profile", "timezone"),
    "signup_at": Field("datetime", "profile", "signup_at"),
    "birthday_month": Field("int", "profile", "birthday__month", minimum=1, maximum=12, limit=12),
    "do_not_contact": Field("bool", "profile", "do_not_contact"),
    **{f"consent_{c}": Field("bool", "profile", f"consent_{c}") for c in ("push", "sms", "email", "wechat", "in_app")},
    # scores of the published run
    "r_score": Field("int", "score", "r_score", minimum=1, maximum=5, limit=5),
    "f_score": Field("int", "score", "f_score", minimum=1, maximum=5, limit=5),
    "m_score": Field("int", "score", "m_score", minimum=1, maximum=5, limit=5),
    "recency_days": Field("int", "score", "recency_days", minimum=0, limit=INT32_MAX),
    "frequency": Field("int", "score", "frequency", minimum=0, limit=INT32_MAX),
    "monetary": Field("decimal", "score", "monetary", minimum=0, limit=DECIMAL_14_2_MAX, places=2),
    # Free text: admins may add group codes to the rule set.
    "rfm_group": Field("str", "score", "rfm_group"),
    "rfm_segment": Field("str", "score", "rfm_segment"),
    "tier": Field("choice", "score", "tier", tuple(TIERS)),
    "stage": Field("choice", "score", "stage", tuple(STAGES)),
    "operating_class": Field("choice", "score", "operating_class", tuple(CLASSES)),
    "p_alive": Field("float", "score", "p_alive", minimum=0, maximum=1, limit=1.0),
    "clv": Field("decimal", "score", "clv", minimum=0, limit=DECIMAL_16_2_MAX, places=2),
    # incentives
    "points_balance": Field("int", "points", "balance", minimum=0, limit=INT64_MAX),
    "level": Field("str", "level", "name"),
    # relations (counted: COUNT(*) is compared as an integer)
    "tag": Field("str", "tag", "tag"),
    "event": Field("int", "event", "count", minimum=0, limit=INT32_MAX),
    "orders": Field("int", "orders", "count", minimum=0, limit=INT32_MAX),
    # community groups (an open membership; the groups and roles come from the registry below)
    "community": Field("str", "community", "group__code"),
}

OPS = {
    "int": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in"},
    "float": {"gt", "gte", "lt", "lte", "between"},
    "decimal": {"eq", "gt", "gte", "lt", "lte", "between"},
    "str": {"eq", "ne", "in", "not_in", "contains"},
    "choice": {"eq", "ne", "in", "not_in"},
    "bool": {"eq"},
    "datetime": {"gt", "gte", "lt", "lte", "between"},
}
COUNT_OPS = {"gte", "lte", "eq"}
TAG_OPS = {"has", "not_has"}
COMMUNITY_OPS = {"eq", "ne", "in", "not_in"}


def field_ops(f: Field) -> set[str]:
    """The comparisons a field takes (its source's, else its kind's)."""
    if f.source == "tag":
        return TAG_OPS
    if f.source in ("event", "orders"):
        return COUNT_OPS
    if f.source == "community":
        return COMMUNITY_OPS
    return OPS[f.kind]


# --- community groups: registered from a higher layer --------------------------------

_community: dict[str, Any] = {"groups": None, "roles": ()}


def community_groups_register(*, groups: Callable[[], dict[str, str]], roles: list[tuple[str, str]]) -> None:
    """``groups()`` → ``{code: name}`` of every community group; ``roles`` the membership
    roles as ``(key, label)``. Called once at start-up by the composition layer."""
    _community["groups"] = groups
    _community["roles"] = tuple(roles)


def community_groups() -> dict[str, str]:
    source = _community["groups"]
    return source() if source is not None else {}


def community_roles() -> tuple[tuple[str, str], ...]:
    return _community["roles"]


class DefinitionError(ApplicationError):
    """A definition that cannot be compiled: ``path`` names the place (``definition.
    conditions[1].value``), ``message`` says what is wrong in the active language."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}", code="invalid_definition", details={"path": path, "message": message})


def shown(value: Any, width: int = 60) -> str:
    """``repr`` of a value for a message, cut to ``width`` characters: a message never
    echoes a 64 KB string back."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 1]}…"


def _parse_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise TypeError
    if not isinstance(value, int | float):
        raise TypeError
    return int(value)


def _parse_float(value: Any) -> float:
    if not isinstance(value, int | float):
        raise TypeError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError
    if not isinstance(value, int | float | str):
        raise TypeError
    number = Decimal(str(value))
    if not number.is_finite():
        raise TypeError
    return number


_PARSERS = {"int": _parse_int, "float": _parse_float}


def _number(kind: str, value: Any, path: str, f: Field):
    try:
        if isinstance(value, bool):
            raise TypeError
        number = _PARSERS.get(kind, _parse_decimal)(value)
    except (TypeError, ValueError, InvalidOperation, OverflowError):
        raise DefinitionError(
            path, _("expected a number (%(kind)s), got %(value)s") % {"kind": kind, "value": shown(value)}
        ) from None
    _check_bounds(number, path, f)
    if f.places is not None:
        if number.as_tuple().exponent < -f.places:
            raise DefinitionError(path, _("at most %(places)s decimal places") % {"places": f.places})
        # The column's own form (0E+9999999999 is 0.00): what the database is sent is a plain number.
        number = number.quantize(Decimal(1).scaleb(-f.places))
    return number


def _check_bounds(number, path: str, f: Field) -> None:
    """The field's own range, then what its column holds."""
    if (f.minimum is not None and number < f.minimum) or (f.maximum is not None and number > f.maximum):
        if f.maximum is None:
            raise DefinitionError(path, _("must be at least %(minimum)s") % {"minimum": f.minimum})
        raise DefinitionError(
            path, _("must be between %(minimum)s and %(maximum)s") % {"minimum": f.minimum, "maximum": f.maximum}
        )
    # copy_abs, not abs(): no context, so 1e9999999 is compared, not a decimal.Overflow.
    magnitude = number.copy_abs() if isinstance(number, Decimal) else abs(number)
    if f.limit is not None and magnitude > f.limit:
        raise DefinitionError(
            path, _("must be at most %(limit)s in size (the largest value stored)") % {"limit": f.limit}
        )


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10


def _out_of_range(path: str) -> DefinitionError:
    return DefinitionError(
        path,
        _("dates and instants go from %(min)s to %(max)s")
        % {"min": INSTANT_MIN.date().isoformat(), "max": INSTANT_MAX.date().isoformat()},
    )


def _datetime(value: Any, path: str) -> datetime:
    """A plain date is the start of that day in the operators' timezone (see
    ``_day_end`` for upper bounds); a datetime must carry its UTC offset. Both lie
    within [INSTANT_MIN, INSTANT_MAX] (a date: its calendar day), so that neither a
    day's end nor the conversion to UTC can leave the representable range."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            if _is_date(value):
                day = date.fromisoformat(value)
                if not DATE_MIN <= day <= DATE_MAX:
                    raise _out_of_range(path)
                return operator_day_bounds(day)[0]
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                raise DefinitionError(path, _("a datetime needs a UTC offset (or give a plain date)"))
            if not INSTANT_MIN <= parsed <= INSTANT_MAX:
                raise _out_of_range(path)
            return parsed
        except (ValueError, OverflowError):
            pass
    raise DefinitionError(path, _("expected an ISO date or datetime, got %(value)s") % {"value": shown(value)})


def _day_end(start: datetime) -> datetime:
    """The start of the next day, wall-clock (a DST change keeps days whole): a plain
    date as an upper bound includes all of that day."""
    return operator_day_bounds(start.date())[1]


def _text(value: Any, path: str, *, longest: int = MAX_TEXT) -> str:
    """A text value the database can compare: at most ``longest`` characters, no NUL
    (PostgreSQL refuses it in text) and no lone surrogate (it cannot be encoded)."""
    if not isinstance(value, str) or len(value) > longest:
        raise DefinitionError(
            path,
            _("expected a text value (at most %(n)s characters), got %(value)s")
            % {"n": longest, "value": shown(value)},
        )
    if "\x00" in value or not _encodable(value):
        raise DefinitionError(path, _("text may not contain NUL or unpaired surrogate characters"))
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value(f: Field, op: str, value: Any, path: str):
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            raise DefinitionError(path, _("between takes [low, high]"))
        low, high = (_value(f, "eq", v, f"{path}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise DefinitionError(path, _("between needs low <= high"))
        return [low, high]
    if op in ("in", "not_in"):
        if not (isinstance(value, list) and value):
            raise DefinitionError(path, _("%(op)s takes a non-empty list") % {"op": op})
        if len(value) > MAX_IN_VALUES:
            raise DefinitionError(path, _("%(op)s takes at most %(n)s values") % {"op": op, "n": MAX_IN_VALUES})
        return [_value(f, "eq", v, f"{path}[{i}]") for i, v in enumerate(value)]
    if f.kind in ("int", "float", "decimal"):
        return _number(f.kind, value, path, f)
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise DefinitionError(path, _("expected true or false, got %(value)s") % {"value": shown(value)})
        return value
    if f.kind == "datetime":
        return _datetime(value, path)
    value = _text(value, path)
    if f.kind == "choice" and value not in f.choices:
        raise DefinitionError(
            path, _("%(value)s is not one of %(choices)s") % {"value": shown(value), "choices": list(f.choices)}
        )
    return value


def _lookup(op: str) -> str:
    return {
        "eq": "",
        "gt": "__gt",
        "gte": "__gte",
        "lt": "__lt",
        "lte": "__lte",
        "in": "__in",
        "between": "__range",
        "contains": "__icontains",
    }.get(op, "")


def _compare(prefix: str, op: str, value) -> Q:
    if op == "ne":
        return ~Q(**{prefix: value})
    if op == "not_in":
        return ~Q(**{f"{prefix}__in": value})
    return Q(**{f"{prefix}{_lookup(op)}": value})


# The temporary table of customer ids a scoped evaluation looks at (membership.scope_open).
SCOPE = "tmp_segment_scope"
_IN_SCOPE = f"SELECT id FROM {SCOPE}"


class _Compiler:
    def __init__(self, *, run_id: int | None, now: datetime, scoped: bool = False):
        self.run_id = run_id
        self.now = now
        self.scoped = scoped
        self.count = 0

    def _scoped(self, qs):
        """Subqueries over other tables look only at the scope's customers, when scoped."""
        return qs.filter(customer_id__in=RawSQL(_IN_SCOPE, [])) if self.scoped else qs

    def node(self, node: Any, path: str, depth: int) -> Q:
        if not isinstance(node, dict):
            raise DefinitionError(path, _("expected an object"))
        if "conditions" in node or node.get("op") in ("and", "or"):
            return self.group(node, path, depth)
        return self.condition(node, path)

    def group(self, node: dict, path: str, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise DefinitionError(path, _("groups nest at most %(depth)s deep") % {"depth": MAX_DEPTH})
        op = node.get("op")
        if op not in ("and", "or"):
            raise DefinitionError(f"{path}.op", _("a group's op is 'and' or 'or'"))
        unknown = set(node) - {"op", "conditions"}
        if unknown:
            raise DefinitionError(path, _("unknown key(s) %(keys)s") % {"keys": _keys(unknown)})
        conditions = node.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise DefinitionError(f"{path}.conditions", _("a group needs a non-empty list of conditions"))
        parts = [self.node(c, f"{path}.conditions[{i}]", depth + 1) for i, c in enumerate(conditions)]
        q = parts[0]
        for part in parts[1:]:
            q = q & part if op == "and" else q | part
        return q

    def condition(self, node: dict, path: str) -> Q:
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise DefinitionError(path, _("a segment has at most %(n)s conditions") % {"n": MAX_CONDITIONS})
        name = node.get("field")
        if not isinstance(name, str) or name not in FIELDS:
            raise DefinitionError(
                f"{path}.field",
                _("unknown field %(name)s; known: %(known)s") % {"name": shown(name), "known": sorted(FIELDS)},
            )
        f = FIELDS[name]
        op = node.get("op")
        allowed = field_ops(f)
        if not isinstance(op, str) or op not in allowed:
            raise DefinitionError(
                f"{path}.op",
                _("%(name)s takes op in %(allowed)s, not %(op)s")
                % {"name": name, "allowed": sorted(allowed), "op": shown(op)},
            )
        extra = {"event": {"event_type", "within_days"}, "orders": {"from", "to"}, "community": {"role"}}.get(
            f.source, set()
        )
        unknown = set(node) - {"field", "op", "value"} - extra
        if unknown:
            raise DefinitionError(path, _("unknown key(s) %(keys)s") % {"keys": _keys(unknown)})
        if "value" not in node:
            raise DefinitionError(f"{path}.value", _("a condition needs a value"))
        value = _value(f, op if f.source not in ("tag",) else "eq", node["value"], f"{path}.value")
        return getattr(self, f"_{f.source}")(f, op, value, node, path)

    def _profile(self, f: Field, op, value, node, path) -> Q:
        raw = node["value"]
        if f.kind == "datetime" and op in ("gt", "lte") and _is_date(raw):
            # Whole days: "after 03-01" starts on 03-02, "up to 03-01" includes the 1st.
            return _compare(f.column, "gte" if op == "gt" else "lt", _day_end(value))
        if f.kind == "datetime" and op == "between" and _is_date(raw[1]):
            return Q(**{f"{f.column}__gte": value[0], f"{f.column}__lt": _day_end(value[1])})
        return _compare(f.column, op, value)

    def _score(self, f: Field, op, value, node, path) -> Q:
        from .models import CustomerScore, ScopedScore

        if self.run_id is None:
            return Q(pk__in=[])  # nothing scored yet: no customer matches a score condition
        # Scoped: the scope's rows of this run, copied once into a small temporary table.
        rows = ScopedScore.objects.all() if self.scoped else CustomerScore.objects.filter(run_id=self.run_id)
        return Q(pk__in=rows.filter(_compare(f.column, op, value)).values("customer_id"))

    def _points(self, f: Field, op, value, node, path) -> Q:
        # Customers without an account have a balance of 0.
        q = _compare("points_account__balance", op, value)
        zero_matches = _matches_zero(op, value)
        return q | Q(points_account__isnull=True) if zero_matches else q & Q(points_account__isnull=False)

    def _level(self, f: Field, op, value, node, path) -> Q:
        return _compare("points_account__level__name", op, value)

    def _tag(self, f: Field, op, value, node, path) -> Q:
        from users.models import CustomerTag

        q = Q(pk__in=self._scoped(CustomerTag.objects.filter(tag=value)).values("customer_id"))
        return q if op == "has" else ~q

    def _counted(self, qs, op: str, value: int) -> Q:
        if (op == "gte" and value <= 0) or (op == "lte" and value < 0):
            return Q() if op == "gte" else Q(pk__in=[])
        qs = self._scoped(qs)
        grouped = qs.values("customer_id").annotate(n=Count("id"))
        if op == "gte":
            return Q(pk__in=grouped.filter(n__gte=value).values("customer_id"))
        if op == "lte":
            return ~Q(pk__in=grouped.filter(n__gt=value).values("customer_id"))
        if value == 0:
            return ~Q(pk__in=qs.values("customer_id"))
        return Q(pk__in=grouped.filter(n=value).values("customer_id"))

    def _event(self, f: Field, op, value, node, path) -> Q:
        from users.models import Event

        event_type = node.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise DefinitionError(f"{path}.event_type", _("name the event type, e.g. 'checkin'"))
        _text(event_type, f"{path}.event_type")
        days = node.get("within_days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise DefinitionError(f"{path}.within_days", _("a whole number of days from 1 to 3650"))
        qs = Event.objects.filter(
            type=event_type, occurred_at__gte=self.now - timedelta(days=days), occurred_at__lte=self.now
        )
        return self._counted(qs.order_by(), op, value)

    def _community(self, f: Field, op, value, node, path) -> Q:
        """Customers with an open membership of the group(s) (holding ``role``, when given);
        ``ne``/``not_in`` are the others. One subquery over the memberships, by the
        customer's reverse relation (segments does not import communities)."""
        from users.models import Customer

        codes = value if isinstance(value, list) else [value]
        known = community_groups()
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise DefinitionError(
                f"{path}.value",
                _("unknown community group %(codes)s; known: %(known)s")
                % {"codes": ", ".join(shown(c, 40) for c in unknown[:5]), "known": _keys(known) or "—"},
            )
        memberships = Customer._meta.get_field("community_memberships").related_model.objects.filter(
            group__code__in=codes, left_at__isnull=True
        )
        if "role" in node:
            memberships = memberships.filter(role__in=self._roles(node["role"], f"{path}.role"))
        q = Q(pk__in=self._scoped(memberships.order_by()).values("customer_id"))
        return ~q if op in ("ne", "not_in") else q

    def _roles(self, raw: Any, path: str) -> list[str]:
        roles = raw if isinstance(raw, list) else [raw]
        keys = [key for key, _label in community_roles()]
        if not roles or len(roles) > len(keys) + 1:
            raise DefinitionError(path, _("a role or a list of roles, one of %(roles)s") % {"roles": keys})
        for role in roles:
            if not isinstance(role, str) or role not in keys:
                raise DefinitionError(
                    path, _("unknown role %(role)s; one of %(roles)s") % {"role": shown(role), "roles": keys}
                )
        return roles

    def _orders(self, f: Field, op, value, node, path) -> Q:
        from users.models import Order

        start = _datetime(node["from"], f"{path}.from") if "from" in node else None
        end = _datetime(node["to"], f"{path}.to") if "to" in node else None
        if start and end and end < start:
            raise DefinitionError(f"{path}.to", _("'to' comes before 'from'"))
        qs = Order.objects.filter(status="paid")
        if start:
            qs = qs.filter(occurred_at__gte=start)
        if end:
            # A plain date as 'to' includes that whole day (in the operators' timezone).
            qs = qs.filter(occurred_at__lt=_day_end(end)) if _is_date(node["to"]) else qs.filter(occurred_at__lte=end)
        return self._counted(qs.order_by(), op, value)


def _keys(keys) -> str:
    """The unknown keys of an object, for a message (at most five, each cut short)."""
    names = sorted(str(k) for k in keys)
    return ", ".join([shown(k, 30) for k in names[:5]] + (["…"] if len(names) > 5 else []))


def _measure(definition: Any) -> None:
    """Refuses, before anything recurses into it, a definition nested deeper than
    ``MAX_JSON_NESTING`` or larger than ``MAX_DEFINITION_BYTES`` serialized — walked with
    a stack of its own, so a body of 100,000 nested lists is an error, not a RecursionError."""
    stack = [(definition, "definition", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_NESTING:
                raise DefinitionError(path, _("nested more than %(n)s levels deep") % {"n": MAX_JSON_NESTING})
            if isinstance(node, dict):
                stack.extend((v, f"{path}.{str(k)[:30]}", depth + 1) for k, v in node.items())
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
    try:
        size = len(json.dumps(definition, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError, RecursionError):
        raise DefinitionError("definition", _("expected an object with 'op' and 'conditions'")) from None
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            "definition", _("a definition is at most %(kb)s KB as JSON") % {"kb": MAX_DEFINITION_BYTES // 1024}
        )


def _matches_zero(op: str, value) -> bool:
    if op == "between":
        return value[0] <= 0 <= value[1]
    if op in ("in", "not_in"):
        return (0 in value) == (op == "in")
    return {"eq": value == 0, "ne": value != 0, "gt": value < 0, "gte": value <= 0, "lt": value > 0, "lte": value >= 0}[
        op
    ]


def compile_definition(definition: Any, *, run_id: int | None, now: datetime | None = None, scoped: bool = False) -> Q:
    """Validates ``definition`` and returns the ``Q`` over Customer that selects its members.

    ``scoped`` limits the customers looked at to the scope ``membership.scope_open``
    wrote: scores come from its copy of their rows, and every subquery over tags,
    events or orders reads only theirs, by index."""
    if not isinstance(definition, dict):
        raise DefinitionError("definition", _("expected an object with 'op' and 'conditions'"))
    _measure(definition)
    q = _Compiler(run_id=run_id, now=now or timezone.now(), scoped=scoped).node(definition, "definition", 1)
    return Q(pk__in=RawSQL(_IN_SCOPE, [])) & q if scoped else q
