"""Fan-out: a campaign occurrence's audience decided and written as deliveries, chunk by
chunk, set-based.

A chunk is a range of customer ids. In one transaction it locks the contact states of
its audience (in id order, like every other send), decides every customer with one
``INSERT … SELECT`` over the delivery history — consent, do-not-contact, unsubscribes,
the caps as window aggregates (the L-th latest send inside a window tells when the
window has room again), back-off from the latest sends' responses, quiet hours in each
customer's timezone — and inserts the deliveries ``ON CONFLICT (key) DO NOTHING``. A
chunk killed half-way rolls back whole; a chunk run again finds its keys and adds
nothing.

The SQL is exact when a customer's counted history is all in the past, which is the
rule for a fan-out. A customer who still has a send planned for later on a capped
channel (a deferred one) has windows that reach into the future; those few are decided
by ``rules.decide`` itself, their histories read in one query. On SQLite (the embedded
demo) every customer is decided that way. ``tests/campaigns/test_fanout_sql.py`` holds
the SQL to ``rules.py`` over random histories.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Max, Min, Q

from campaigns import rules
from campaigns.models import (
    COUNTED_STATUSES,
    HANDED_STATUSES,
    Campaign,
    Category,
    ContactState,
    Delivery,
    Variant,
)
from campaigns.services.policy import longest_window, recipient_of
from segments import selectors as segment_selectors
from users.models import CONSENT_FIELDS, Customer


@dataclass(frozen=True)
class Occurrence:
    """What one send of a campaign is: the instant it is due and the name in its keys."""

    name: str
    due: datetime


@dataclass(frozen=True)
class _Window:
    code: str
    seconds: int
    limit: int
    reduced: int  # the limit while backed off (== limit when the cap is not reduced)
    channel: str | None
    content_class: str | None


def variant_bucket(campaign_id: int, customer_id: int) -> int:
    """0–99: which slice of the split a customer falls in, the same every occurrence."""
    return (customer_id * 7919 + campaign_id * 104729) % 100


def variant_for(variants: list[Variant], bucket: int) -> Variant:
    edge = 0
    for variant in variants:
        edge += variant.share
        if bucket < edge:
            return variant
    return variants[-1]


def audience(campaign: Campaign):
    """The campaign's audience as a queryset of customers (anyone in a segment, in no
    excluded one)."""
    include = Q()
    for slug in campaign.segments:
        include |= Q(pk__in=segment_selectors.segment_members(slug=slug).values("id"))
    qs = Customer.objects.filter(include) if campaign.segments else Customer.objects.none()
    for slug in campaign.excluded_segments:
        qs = qs.exclude(pk__in=segment_selectors.segment_members(slug=slug).values("id"))
    return qs


def chunk_ranges(campaign: Campaign, *, size: int = 10_000) -> list[tuple[int, int]]:
    """Half-open customer id ranges covering the audience."""
    bounds = audience(campaign).aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return []
    return [(lo, min(lo + size, bounds["hi"] + 1)) for lo in range(bounds["lo"], bounds["hi"] + 1, size)]


def _windows(policy: rules.Policy, send: rules.Send) -> list[_Window]:
    out = []
    for cap in policy.caps:
        if (cap.channel is not None and cap.channel != send.channel) or (
            cap.content_class is not None and cap.content_class != send.content_class
        ):
            continue
        for window in cap.windows:
            reduced = window.limit
            if cap.channel == send.channel:
                reduced = min(window.limit, max(1, int(window.limit * policy.backoff_factor)))
            out.append(_Window(cap.code, window.seconds, window.limit, reduced, cap.channel, cap.content_class))
    return out


def _lit(value) -> str:
    """A SQL literal of a value we made (instants, codes, channels): quotes doubled, and
    ``%`` doubled for the driver's parameter syntax. User input never gets here."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return _lit(value.isoformat()) + "::timestamptz"
    return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"


def _scope(window: _Window) -> str:
    clauses = []
    if window.channel is not None:
        clauses.append(f"h.channel = {_lit(window.channel)}")
    if window.content_class is not None:
        clauses.append(f"h.content_class = {_lit(window.content_class)}")
    return " AND ".join(clauses) or "TRUE"


def _quiet_sql(policy: rules.Policy, t: str) -> tuple[str, str]:
    """(is quiet at ``t``, the end of that quiet period) in the customer's zone ``tz``."""
    qs, qe = (f"{_lit(x.strftime('%H:%M:%S'))}::time" for x in (policy.quiet_start, policy.quiet_end))
    local = f"({t} AT TIME ZONE tz)"
    if policy.quiet_start == policy.quiet_end:
        return "FALSE", t
    if policy.quiet_start < policy.quiet_end:
        quiet = f"({local}::time >= {qs} AND {local}::time < {qe})"
        next_day = "0"
    else:
        quiet = f"({local}::time >= {qs} OR {local}::time < {qe})"
        next_day = f"CASE WHEN {local}::time >= {qs} THEN 1 ELSE 0 END"
    return quiet, f"((({local}::date + {next_day}) + {qe}) AT TIME ZONE tz)"


def _caps_sql(windows: list[_Window], due: str, *, eff: str) -> tuple[str, str]:
    """(the instant after the caps, the rule of the last window that moved it) — the
    rules' fixpoint, which over a history all in the past settles in one round: each
    window in turn moves the instant to when it has room. ``eff`` names the columns of
    the limits in force (``e``) or the plain ones (``b``)."""
    at, movers = due, []
    for i, w in enumerate(windows):
        e_i = f"{eff}{i}"
        before = at
        at = f"GREATEST({before}, COALESCE({e_i}, {due}))"
        backoff = "FALSE"
        if eff == "e" and w.reduced < w.limit:
            backoff = f"(backed AND GREATEST({before}, COALESCE(b{i}, {due})) < {e_i})"
        code = _lit(w.code)[1:-1]
        movers.append(f"WHEN {e_i} > {before} THEN (CASE WHEN {backoff} THEN 'backoff:{code}' ELSE 'cap:{code}' END)")
    rule = f"CASE {' '.join(reversed(movers))} ELSE '' END" if movers else "''"
    return at, rule


def sql_params(ids: list[int]) -> dict:
    """The named parameters ``decision_sql`` and ``future_sql`` take."""
    return {"ids": ids, "zones": pg_zones()}


def pg_zones() -> list[str]:
    """The timezone names PostgreSQL knows (read once per process): a customer's stored
    zone outside them is the default one, as in ``rules``."""
    if _pg_zones.get(connection.alias) is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_timezone_names")
            _pg_zones[connection.alias] = sorted({row[0] for row in cursor.fetchall()})
    return _pg_zones[connection.alias]


_pg_zones: dict[str, list[str]] = {}


def _between(column: str, ids: list[int]) -> str:
    """The chunk's id range, so the planner reads the rows by index instead of scanning
    the whole table; the join with ``aud`` (the exact ids) does the rest. (A 10,000-element
    ``= ANY(array)`` here would cost more to plan than to run.)"""
    return f"{column} BETWEEN {int(min(ids))} AND {int(max(ids))}"


def decision_sql(*, send: rules.Send, policy: rules.Policy, ids: list[int]) -> str:
    """One SELECT answering ``(customer_id, status, reason, rule, send_after)`` for each
    of ``ids`` (named parameters: ``sql_params(ids)``) whose counted history in the
    caps' scope is all at or before ``send.due`` (the others: ``future_sql``)."""
    windows = _windows(policy, send)
    due = _lit(send.due)
    longest = max((w.seconds for w in windows), default=0)
    consent = CONSENT_FIELDS[send.channel]
    ctes = [
        """aud AS (SELECT unnest(%(ids)s::bigint[]) AS customer_id)""",
        f"""c AS (
            SELECT cu.id, cu.do_not_contact AS dnc, cu.{consent} AS consent,
                   CASE WHEN cu.timezone = ANY(%(zones)s::text[]) THEN cu.timezone
                        ELSE {_lit(policy.default_timezone)} END AS tz,
                   COALESCE(st.unsubscribed::jsonb ? {_lit(send.channel)}, FALSE) AS unsub
            FROM {Customer._meta.db_table} cu JOIN aud ON aud.customer_id = cu.id
            LEFT JOIN {ContactState._meta.db_table} st ON st.customer_id = cu.id
            WHERE {_between("cu.id", ids)})""",
        f"""h AS (
            SELECT d.customer_id, d.planned_at, d.channel, d.content_class
            FROM {Delivery._meta.db_table} d JOIN aud ON aud.customer_id = d.customer_id
            WHERE {_between("d.customer_id", ids)} AND d.category = 'marketing' AND d.planned_at IS NOT NULL
              AND d.planned_at > {due} - make_interval(secs => {longest})
              AND d.status IN ({", ".join(_lit(s) for s in COUNTED_STATUSES)}))""",
        f"""fut AS (SELECT DISTINCT h.customer_id FROM h
            WHERE h.planned_at > {due} AND ({" OR ".join(f"({_scope(w)})" for w in windows) or "FALSE"}))""",
        f"""bo AS (
            SELECT customer_id FROM (
                SELECT d.customer_id,
                       row_number() OVER (PARTITION BY d.customer_id ORDER BY d.sent_at DESC) AS rn,
                       (d.opened_at IS NULL AND d.clicked_at IS NULL AND d.responded_at IS NULL
                        AND d.converted_at IS NULL) AS silent
                FROM {Delivery._meta.db_table} d JOIN aud ON aud.customer_id = d.customer_id
                WHERE {_between("d.customer_id", ids)} AND d.category = 'marketing'
                  AND d.channel = {_lit(send.channel)} AND d.sent_at IS NOT NULL
                  AND d.status IN ({", ".join(_lit(s) for s in HANDED_STATUSES)})
            ) x WHERE rn <= {int(policy.backoff_after)}
            GROUP BY customer_id HAVING count(*) = {int(policy.backoff_after)} AND bool_and(silent))""",
    ]
    # Per window: when it has room again — its L-th latest send, plus its length.
    for i, w in enumerate(windows):
        ctes.append(
            f"""w{i} AS (
            SELECT customer_id, max(t) FILTER (WHERE rn = {w.limit}) AS base,
                   max(t) FILTER (WHERE rn = {w.reduced}) AS red
            FROM (
                SELECT h.customer_id, h.planned_at + make_interval(secs => {w.seconds}) AS t,
                       row_number() OVER (PARTITION BY h.customer_id ORDER BY h.planned_at DESC) AS rn
                FROM h WHERE h.planned_at <= {due} AND h.planned_at > {due} - make_interval(secs => {w.seconds})
                  AND {_scope(w)}
            ) r GROUP BY customer_id)"""
        )
    joins = "".join(f" LEFT JOIN w{i} ON w{i}.customer_id = c.id" for i in range(len(windows)))
    backed = "(bo.customer_id IS NOT NULL)"
    cols = "".join(
        f", CASE WHEN {backed} THEN w{i}.red ELSE w{i}.base END AS e{i}, w{i}.base AS b{i}" for i in range(len(windows))
    )
    ctes.append(
        f"""e AS (
            SELECT c.*, {backed} AS backed {cols}
            FROM c LEFT JOIN bo ON bo.customer_id = c.id {joins}
            WHERE c.id NOT IN (SELECT customer_id FROM fut))"""
    )
    caps_at, caps_rule = _caps_sql(windows, due, eff="e")
    plain_at, plain_rule = _caps_sql(windows, due, eff="b")
    ctes.append(
        f"k AS (SELECT e.*, {caps_at} AS caps_at, {caps_rule} AS caps_rule,"
        f" {plain_at} AS plain_at, {plain_rule} AS plain_rule FROM e)"
    )
    quiet_f, end_f = _quiet_sql(policy, "caps_at")
    quiet_p, end_p = _quiet_sql(policy, "plain_at")
    ctes.append(
        f"""q AS (
            SELECT k.*,
                   CASE WHEN {quiet_f} THEN {end_f} ELSE caps_at END AS t_found,
                   CASE WHEN {quiet_f} THEN 'quiet_hours' ELSE caps_rule END AS r_found,
                   CASE WHEN {quiet_p} THEN {end_p} ELSE plain_at END AS t_plain,
                   CASE WHEN {quiet_p} THEN 'quiet_hours' ELSE plain_rule END AS r_plain
            FROM k)"""
    )
    # Back-off names the wait only when it made the wait longer (rules.earliest_allowed).
    ctes.append(
        """f AS (
            SELECT id, dnc, consent, unsub, t_found AS t,
                   CASE WHEN r_found LIKE 'backoff:%%' AND t_plain = t_found THEN r_plain ELSE r_found END AS rule
            FROM q)"""
    )
    max_delay = int(send.max_delay.total_seconds()) if send.max_delay is not None else 10**9
    hold = "TRUE" if send.on_hold == rules.SUPPRESS else "FALSE"
    refused = "(dnc OR NOT consent)"
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"""
        SELECT id AS customer_id,
            CASE WHEN {refused} THEN 'suppressed'
                 WHEN t = {due} THEN 'queued'
                 WHEN {hold} OR t > {due} + make_interval(secs => {max_delay}) THEN 'suppressed'
                 ELSE 'deferred' END AS status,
            CASE WHEN dnc THEN 'do_not_contact'
                 WHEN unsub AND NOT consent THEN 'unsubscribed'
                 WHEN NOT consent THEN 'no_consent'
                 WHEN rule = 'quiet_hours' THEN 'quiet_hours'
                 WHEN rule LIKE 'backoff:%%' THEN 'backoff'
                 WHEN rule LIKE 'cap:%%' THEN 'cap'
                 ELSE '' END AS reason,
            CASE WHEN dnc THEN 'do_not_contact'
                 WHEN unsub AND NOT consent THEN {_lit("unsubscribe:" + send.channel)}
                 WHEN NOT consent THEN {_lit("consent:" + send.channel)}
                 ELSE rule END AS rule,
            CASE WHEN {refused} OR (t <> {due} AND ({hold} OR t > {due} + make_interval(secs => {max_delay})))
                 THEN NULL ELSE t END AS send_after
        FROM f"""
    )


def future_sql(*, send: rules.Send, policy: rules.Policy, ids: list[int]) -> str:
    """Which of ``ids`` ``decision_sql`` leaves out (named parameters: ``sql_params``)."""
    windows = _windows(policy, send)
    due = _lit(send.due)
    scopes = " OR ".join(f"({_scope(w)})" for w in windows) or "FALSE"
    return f"""
        SELECT DISTINCT h.customer_id FROM {Delivery._meta.db_table} h
        JOIN unnest(%(ids)s::bigint[]) AS aud(customer_id) ON aud.customer_id = h.customer_id
        WHERE {_between("h.customer_id", ids)} AND h.category = 'marketing' AND h.planned_at > {due}
          AND h.status IN ({", ".join(_lit(s) for s in COUNTED_STATUSES)}) AND ({scopes})"""


def decisions_sql(*, ids: list[int], send: rules.Send, policy: rules.Policy) -> dict[int, rules.Decision]:
    """The set-based decisions (PostgreSQL) for ``ids``; the ones it leaves out are
    those with a send planned after ``send.due``."""
    with connection.cursor() as cursor:
        cursor.execute(decision_sql(send=send, policy=policy, ids=ids), sql_params(ids))
        return {
            customer_id: rules.Decision(status, reason, rule, send_after)
            for customer_id, status, reason, rule, send_after in cursor.fetchall()
        }


def decisions_python(*, ids: list[int], send: rules.Send, policy: rules.Policy) -> dict[int, rules.Decision]:
    """``rules.decide`` for each customer, their histories read in two queries."""
    since = send.due - longest_window(policy)
    customers = Customer.objects.in_bulk(ids)
    states = ContactState.objects.in_bulk(ids)
    history: dict[int, list[rules.Planned]] = {}
    if send.category == rules.MARKETING:
        rows = Delivery.objects.filter(
            customer_id__in=ids, category=Category.MARKETING, planned_at__gt=since, status__in=COUNTED_STATUSES
        ).values_list("customer_id", "planned_at", "channel", "content_class")
        for customer_id, at, channel, content_class in rows:
            history.setdefault(customer_id, []).append(
                rules.Planned(at=at, channel=channel, content_class=content_class)
            )
    latest: dict[int, list[bool]] = {}
    rows = (
        Delivery.objects.filter(
            customer_id__in=ids, channel=send.channel, category=Category.MARKETING, status__in=HANDED_STATUSES
        )
        .exclude(sent_at=None)
        .order_by("customer_id", "-sent_at")
        .values_list("customer_id", "opened_at", "clicked_at", "responded_at", "converted_at")
    )
    for customer_id, *responses in rows:
        latest.setdefault(customer_id, []).append(any(responses))
    out = {}
    for customer_id in ids:
        customer = customers.get(customer_id)
        if customer is None:
            continue
        unanswered = 0
        for answered in latest.get(customer_id, [])[: policy.backoff_after]:
            if answered:
                break
            unanswered += 1
        recipient = recipient_of(customer, states.get(customer_id), {send.channel: unanswered})
        out[customer_id] = rules.decide(
            send=send, recipient=recipient, history=history.get(customer_id, []), policy=policy
        )
    return out


def decisions(*, ids: list[int], send: rules.Send, policy: rules.Policy) -> dict[int, rules.Decision]:
    """Every customer's decision: set-based on PostgreSQL (``rules.decide`` for those
    with a send still planned after this one), ``rules.decide`` on SQLite."""
    if not ids:
        return {}
    if connection.vendor != "postgresql" or send.category != rules.MARKETING:
        if send.category != rules.MARKETING:
            return dict.fromkeys(ids, rules.Decision(rules.QUEUED, "", "", send.due))
        return decisions_python(ids=ids, send=send, policy=policy)
    out = decisions_sql(ids=ids, send=send, policy=policy)
    rest = [pk for pk in ids if pk not in out]
    if rest:
        out.update(decisions_python(ids=rest, send=send, policy=policy))
    return out
