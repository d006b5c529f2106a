"""The contact policy: whether, and when, a message may be handed over to a channel.

Pure functions over plain values (no Django, no database, stdlib only), so the send
pipeline, the scheduler, benchmarks and tests all apply exactly the same rules.

Order of the rules for a marketing send: do-not-contact, unsubscribe and consent
suppress outright; then the frequency caps (with back-off for unresponsive
recipients) and the recipient's quiet hours hold it back to the earliest instant they
all allow, and the send's own ``on_hold`` / ``max_delay`` say whether it waits for that
instant (DEFERRED) or is dropped (SUPPRESSED). Transactional sends skip all of it,
except that one carrying marketing content still honours do-not-contact.

Every instant is an aware datetime; comparisons and results are in UTC.
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MARKETING, TRANSACTIONAL = "marketing", "transactional"
DEFER, SUPPRESS = "defer", "suppress"
QUEUED, DEFERRED, SUPPRESSED = "queued", "deferred", "suppressed"
# reasons
R_DNC, R_NO_CONSENT, R_UNSUBSCRIBED, R_CAP, R_BACKOFF, R_QUIET = (
    "do_not_contact",
    "no_consent",
    "unsubscribed",
    "cap",
    "backoff",
    "quiet_hours",
)

# Each round of the fixpoint moves the instant to some planned point + a window, or to
# the end of a quiet period; a finite history runs out of such moves long before this.
_MAX_ROUNDS = 10_000


@dataclass(frozen=True)
class Window:
    """At most ``limit`` marketing sends in ANY rolling window of ``seconds``.

    Windows are half-open intervals (a, a + seconds]: a send exactly ``seconds`` after
    another no longer shares a window with it. ``seconds`` > 0 and ``limit`` >= 1, else
    ValueError (a limit of 0 would hold a send back forever; withdraw consent instead).
    """

    seconds: int
    limit: int

    def __post_init__(self):
        if self.seconds <= 0 or self.limit < 1:
            raise ValueError(f"a window needs seconds > 0 and limit >= 1, got {self!r}")


@dataclass(frozen=True)
class Cap:
    """A frequency cap: every one of ``windows`` must hold for a send it applies to.

    It applies to a send on ``channel`` (None: every channel, the cross-channel cap) of
    ``content_class`` (None: any class), and counts the history items matching the
    same filter.
    """

    code: str
    channel: str | None
    content_class: str | None
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class Policy:
    """The caps, the quiet hours (recipient's local time, [quiet_start, quiet_end);
    equal ends mean none) and the back-off for recipients who stopped answering."""

    caps: tuple[Cap, ...]
    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    backoff_after: int = 3
    backoff_factor: float = 0.5
    default_timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Planned:
    """A marketing delivery already on the customer's record (sent, queued or deferred).

    ``at`` is when it was, or is planned to be, handed over; it may be in the future.
    The send being decided must not itself be in the history.
    """

    at: datetime
    channel: str
    content_class: str = ""


@dataclass(frozen=True)
class Recipient:
    """What the rules need to know of the customer: consent per channel, the
    do-not-contact flag, the timezone, consecutive unanswered marketing sends per
    channel, and the channels withdrawn by unsubscribe."""

    consent: Mapping[str, bool]
    do_not_contact: bool
    timezone: str
    unanswered: Mapping[str, int] = field(default_factory=dict)
    unsubscribed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Send:
    """One message to decide on. ``on_hold`` says what happens to a marketing send the
    caps or quiet hours hold back: DEFER it to the allowed instant, or SUPPRESS it;
    past ``due + max_delay`` it is suppressed either way."""

    channel: str
    category: str
    due: datetime
    content_class: str = ""
    max_delay: timedelta | None = None
    on_hold: str = DEFER
    marketing_content: bool = False


@dataclass(frozen=True)
class Decision:
    """The outcome: ``status``, the ``reason`` (an R_* value, "" when queued on time),
    the deciding ``rule`` as shown to operators, ``send_after`` (== due when queued, the
    deferred instant, None when suppressed) and, for a send suppressed by a hold,
    ``held_until``: the earliest instant the rules would have allowed."""

    status: str
    reason: str
    rule: str
    send_after: datetime | None
    held_until: datetime | None = None


def default_caps() -> tuple[Cap, ...]:
    """Push 3 h/1 and 24 h/7; SMS 48 h/1 and 30 d/8; WeChat 4-1-1 per 7 days (4 regular,
    1 in-depth, 1 interactive, each class counted on its own); 8 per 24 h across all
    channels."""
    hour, day = 3600, 86400
    return (
        Cap("push-3-7", "push", None, (Window(3 * hour, 1), Window(day, 7))),
        Cap("sms-2-8", "sms", None, (Window(2 * day, 1), Window(30 * day, 8))),
        Cap("wechat-4-1-1-regular", "wechat", "regular", (Window(7 * day, 4),)),
        Cap("wechat-4-1-1-in-depth", "wechat", "in_depth", (Window(7 * day, 1),)),
        Cap("wechat-4-1-1-interactive", "wechat", "interactive", (Window(7 * day, 1),)),
        Cap("all-channels-daily", None, None, (Window(day, 8),)),
    )


def decide(*, send: Send, recipient: Recipient, history: Sequence[Planned], policy: Policy) -> Decision:
    """Decide one send against the recipient, their marketing history and the policy.

    Transactional: QUEUED at ``due``, unless it carries marketing content and the
    recipient is do-not-contact (SUPPRESSED, R_DNC). Marketing: do-not-contact,
    unsubscribe, then consent suppress it; otherwise ``earliest_allowed`` gives the
    instant: ``due`` itself → QUEUED; later → DEFERRED to it, or SUPPRESSED with
    ``held_until`` when ``on_hold`` is SUPPRESS or it lies beyond ``due + max_delay``.
    ValueError for a naive datetime, an unknown category or ``on_hold``.
    """
    due = _utc(send.due)
    for planned in history:
        _utc(planned.at)
    if send.category == TRANSACTIONAL:
        if send.marketing_content and recipient.do_not_contact:
            return Decision(SUPPRESSED, R_DNC, "do_not_contact", None)
        return Decision(QUEUED, "", "", due)
    if send.category != MARKETING:
        raise ValueError(f"unknown category {send.category!r}")
    if send.on_hold not in (DEFER, SUPPRESS):
        raise ValueError(f"unknown on_hold {send.on_hold!r}")
    refused = _refusal(send, recipient)
    if refused:
        return refused
    at, reason, rule = earliest_allowed(send=send, recipient=recipient, history=history, policy=policy)
    if at == due:
        return Decision(QUEUED, "", "", due)
    if send.on_hold == SUPPRESS or (send.max_delay is not None and at > due + send.max_delay):
        return Decision(SUPPRESSED, reason, rule, None, held_until=at)
    return Decision(DEFERRED, reason, rule, at)


def _refusal(send: Send, recipient: Recipient) -> Decision | None:
    """The outright refusal of a marketing send (do-not-contact, unsubscribe, consent), if any."""
    if recipient.do_not_contact:
        return Decision(SUPPRESSED, R_DNC, "do_not_contact", None)
    if send.channel in recipient.unsubscribed:
        return Decision(SUPPRESSED, R_UNSUBSCRIBED, f"unsubscribe:{send.channel}", None)
    if not recipient.consent.get(send.channel, False):
        return Decision(SUPPRESSED, R_NO_CONSENT, f"consent:{send.channel}", None)
    return None


def earliest_allowed(
    *, send: Send, recipient: Recipient, history: Sequence[Planned], policy: Policy
) -> tuple[datetime, str, str]:
    """(instant, reason, rule) – the earliest instant >= send.due every cap (with back-off)
    and quiet hours allow, and the rule that bound last ("", "" when due itself is allowed).

    The instant is in UTC. The rules are applied in turn (caps in policy order, each
    window in order, then quiet hours) until none moves the instant; the reason and rule
    are those of the last move: R_CAP / "cap:<code>", R_QUIET / "quiet_hours", or
    R_BACKOFF / "backoff:<code>" when the window that moved it last had its limit
    reduced by back-off, the unreduced window would have allowed an earlier instant,
    and the instant without any back-off is earlier too. When back-off makes no
    difference to the instant, the reason and rule are those found without back-off.
    Consent is not checked here; a transactional send is allowed at its due.
    RuntimeError if no fixpoint is reached.
    """
    due = _utc(send.due)
    if send.category != MARKETING:
        return due, "", ""
    zone = _zone(recipient.timezone, policy.default_timezone)
    bounds = _bounds(send, recipient, history, policy)
    found = _fixpoint(due, bounds, zone, policy)
    if found[1] == R_BACKOFF:
        plain = _fixpoint(due, [replace(b, limit=b.base_limit) for b in bounds], zone, policy)
        # Back-off only explains the wait if it made the wait longer; otherwise name the
        # rule that holds the send back anyway (e.g. the cross-channel cap).
        if plain[0] == found[0]:
            return plain
    return found


def window_feasible(at: datetime, points: Sequence[datetime], window: Window) -> bool:
    """Whether a send at ``at`` keeps every rolling window (a, a + seconds] at most
    ``window.limit`` sends, counting ``points`` (past and future) and ``at`` itself."""
    return _feasible(_utc(at), sorted(_utc(p) for p in points), timedelta(seconds=window.seconds), window.limit)


def is_quiet(at: datetime, tz: str, policy: Policy) -> bool:
    """Whether ``at`` falls in the quiet hours in timezone ``tz`` (an unknown or empty
    one means ``policy.default_timezone``)."""
    return _quiet(_utc(at), _zone(tz, policy.default_timezone), policy)


def quiet_end_after(at: datetime, tz: str, policy: Policy) -> datetime:
    """The end of the quiet period ``at`` is in, in UTC: the first instant after it
    whose local time in ``tz`` has reached ``policy.quiet_end`` (across DST too: on a
    spring-forward night an end inside the skipped hour is the instant the clocks
    jump). ``at`` itself (in UTC) when it is not quiet."""
    at, zone = _utc(at), _zone(tz, policy.default_timezone)
    return _quiet_end(at, zone, policy) if _quiet(at, zone, policy) else at


def violations(history: Sequence[Planned], policy: Policy) -> list[tuple[str, datetime]]:
    """Every (cap code, window start) where the history holds more marketing sends than
    a cap allows (no back-off considered) — the independent check benchmarks and tests use.

    The window start is the instant (UTC) of the first send of an over-full window, i.e.
    of each send that is followed, less than a window's length later, by ``limit``
    more that the cap counts. Sorted, without repeats.
    """
    found = set()
    for cap in policy.caps:
        points = sorted(_utc(p.at) for p in history if _counts(cap, p))
        for window in cap.windows:
            delta = timedelta(seconds=window.seconds)
            # limit + 1 sorted points fit in some (a, a + S] exactly when they span less than S.
            for i in range(len(points) - window.limit):
                if points[i + window.limit] - points[i] < delta:
                    found.add((cap.code, points[i]))
    return sorted(found)


# --- internals ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
    """One window of one cap as it applies to the send: the points it counts (sorted,
    UTC), its length, the limit in force and the limit without back-off."""

    code: str
    points: tuple[datetime, ...]
    delta: timedelta
    limit: int
    base_limit: int


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the contact rules need aware datetimes")
    return at.astimezone(UTC)


@lru_cache(maxsize=512)
def _zone(tz: str, default: str) -> ZoneInfo:
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # A recipient's stored timezone may be stale or garbage; the policy's
            # default still gives them sensible quiet hours.
            pass
    return ZoneInfo(default)


def _applies(cap: Cap, send: Send) -> bool:
    return (cap.channel is None or cap.channel == send.channel) and (
        cap.content_class is None or cap.content_class == send.content_class
    )


def _counts(cap: Cap, planned: Planned) -> bool:
    return (cap.channel is None or cap.channel == planned.channel) and (
        cap.content_class is None or cap.content_class == planned.content_class
    )


def _bounds(send: Send, recipient: Recipient, history: Sequence[Planned], policy: Policy) -> list[_Bound]:
    backed_off = recipient.unanswered.get(send.channel, 0) >= policy.backoff_after
    bounds = []
    for cap in policy.caps:
        if not _applies(cap, send):
            continue
        points = tuple(sorted(_utc(p.at) for p in history if _counts(cap, p)))
        # Back-off is about this channel going unanswered: the cross-channel cap stays.
        reduced = backed_off and cap.channel == send.channel
        for window in cap.windows:
            limit = window.limit
            if reduced:
                # Never above the plain limit: a factor > 1 must not loosen the cap.
                limit = min(limit, max(1, math.floor(limit * policy.backoff_factor)))
            bounds.append(_Bound(cap.code, points, timedelta(seconds=window.seconds), limit, window.limit))
    return bounds


def _in(points: Sequence[datetime], start: datetime, end: datetime) -> int:
    """How many of the sorted ``points`` lie in (start, end]."""
    return bisect_right(points, end) - bisect_right(points, start)


def _feasible(at: datetime, points: Sequence[datetime], delta: timedelta, limit: int) -> bool:
    # The count in (a, a + S] over a in [at - S, at) only rises where a + S reaches a
    # point, so its maximum is at a = at - S or at a = p - S for a point p in (at, at + S).
    if _in(points, at - delta, at) + 1 > limit:
        return False
    for p in points[bisect_right(points, at) : bisect_left(points, at + delta)]:
        if _in(points, p - delta, p) + 1 > limit:
            return False
    return True


def _fixpoint(due: datetime, bounds: Sequence[_Bound], zone: ZoneInfo, policy: Policy) -> tuple[datetime, str, str]:
    """Apply the rules in turn from ``due`` until none moves the instant; (instant, reason, rule)."""
    at, reason, rule = due, "", ""
    # Each rule moves the instant to the least one >= it that the rule allows, so the
    # instant never passes the least one all rules allow: the fixpoint is that one.
    for _ in range(_MAX_ROUNDS):
        moved = False
        for bound in bounds:
            later = _earliest_in_window(at, bound.points, bound.delta, bound.limit)
            if later == at:
                continue
            if bound.limit < bound.base_limit and (
                _earliest_in_window(at, bound.points, bound.delta, bound.base_limit) < later
            ):
                reason, rule = R_BACKOFF, f"backoff:{bound.code}"
            else:
                reason, rule = R_CAP, f"cap:{bound.code}"
            at, moved = later, True
        if _quiet(at, zone, policy):
            at, reason, rule, moved = _quiet_end(at, zone, policy), R_QUIET, "quiet_hours", True
        if not moved:
            return at, reason, rule
    raise RuntimeError(f"no instant satisfies the contact policy within {_MAX_ROUNDS} rounds from {due}")


def _earliest_in_window(at: datetime, points: Sequence[datetime], delta: timedelta, limit: int) -> datetime:
    """The least instant >= ``at`` the window allows."""
    if _feasible(at, points, delta, limit):
        return at
    # The refused instants form intervals (c, d + S) with d a point, so the allowed ones
    # resume at some point + S; the last point + S shares a window with no point at all.
    for p in points[bisect_right(points, at - delta) :]:
        if _feasible(p + delta, points, delta, limit):
            return p + delta
    raise AssertionError("unreachable: the last point + S is always allowed")


def _quiet(at: datetime, zone: ZoneInfo, policy: Policy) -> bool:
    start, end = policy.quiet_start, policy.quiet_end
    local = at.astimezone(zone).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _quiet_end(at: datetime, zone: ZoneInfo, policy: Policy) -> datetime:
    """The end of the quiet period the (quiet) UTC instant ``at`` is in."""
    local = at.astimezone(zone)
    day = local.date()
    if policy.quiet_start > policy.quiet_end and local.time() >= policy.quiet_start:
        day += timedelta(days=1)
    wall = datetime.combine(day, policy.quiet_end)
    # A wall time can occur twice (autumn: fold 0 and 1) or not at all (spring gap).
    ends = []
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if candidate.astimezone(zone).replace(tzinfo=None) == wall:
            ends.append(candidate)
    if not ends:
        ends.append(_gap_exit(wall, zone))
    # The first occurrence after `at`: a repeated hour's second pass (fold=1) may have
    # begun quiet again after the first occurrence had already passed.
    return min(end for end in ends if end > at)


def _gap_exit(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant whose local time is >= ``wall``, a wall time the clocks skip."""
    low, high = sorted(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    # local(low) < wall <= local(high); the jump between them is one transition.
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) // 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high
