"""Earning rules, applied in the worker: events (check-in, streak, content, activity,
invite) and orders (purchase points, reversed on refund or cancellation) become
rule entries, posted in bulk with daily caps."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from users.models import Customer, Event, Order, OrderStatus

from .. import rules
from ..models import RULE_EVENT_TYPES, EarningRule, EntryKind, EntrySource, PointsEntry, RuleKind
from ..selectors import checkin_streaks, policy_get
from .ledger import accounts_lock, accounts_save, entry_build, reversal_build
from .levels import badges_award, levels_update


@dataclass
class _Candidate:
    customer_id: int
    rule: EarningRule
    points: int
    key: str
    earned_on: object
    reason: str
    source_ref: str
    source: str = EntrySource.RULE


def _active_rules() -> dict[str, list[EarningRule]]:
    """Rules switched on, by kind; their active period is judged per fact (``_in_period``)."""
    by_kind: dict[str, list[EarningRule]] = defaultdict(list)
    for rule in EarningRule.objects.filter(is_active=True):
        by_kind[rule.kind].append(rule)
    return by_kind


def _in_period(rule: EarningRule, at: datetime) -> bool:
    """Judged at the time of the fact, not of processing: a check-in just before a
    campaign ends pays even when the worker reaches it later, and a backfilled event
    from before the period pays nothing."""
    return (rule.active_from is None or rule.active_from <= at) and (
        rule.active_until is None or at < rule.active_until
    )


def _post_candidates(candidates: list[_Candidate], *, now: datetime) -> list[PointsEntry]:
    """Writes rule entries in bulk: one lock of the accounts, one read of the keys and
    of today's capped totals, one insert, one account update."""
    if not candidates:
        return []
    policy = policy_get()
    customer_ids = {c.customer_id for c in candidates}
    tz_of = dict(Customer.objects.filter(pk__in=customer_ids).values_list("id", "timezone"))
    with transaction.atomic():
        accounts = accounts_lock(customer_ids)
        taken = set(
            PointsEntry.objects.filter(
                customer_id__in=customer_ids, idempotency_key__in={c.key for c in candidates}
            ).values_list("customer_id", "idempotency_key")
        )
        capped_rules = {c.rule.pk for c in candidates if c.rule.daily_cap}
        paid_today: dict[tuple, int] = defaultdict(int)
        if capped_rules:
            rows = (
                PointsEntry.objects.filter(
                    customer_id__in=customer_ids,
                    rule_id__in=capped_rules,
                    earned_on__in={c.earned_on for c in candidates},
                )
                .values("customer_id", "rule_id", "earned_on")
                .annotate(total=Sum("amount"))
            )
            for row in rows:
                paid_today[(row["customer_id"], row["rule_id"], row["earned_on"])] = row["total"]
        entries = []
        for c in candidates:
            if (c.customer_id, c.key) in taken:
                continue
            taken.add((c.customer_id, c.key))
            day = (c.customer_id, c.rule.pk, c.earned_on)
            points = rules.clamp_to_cap(c.points, already_today=paid_today[day], cap=c.rule.daily_cap)
            if points <= 0:
                continue
            paid_today[day] += points
            entries.append(
                entry_build(
                    accounts[c.customer_id],
                    now=now,
                    kind=EntryKind.EARN,
                    amount=points,
                    growth=points if c.rule.counts_for_growth else 0,
                    reason=c.reason,
                    source=c.source,
                    source_ref=c.source_ref,
                    rule=c.rule,
                    idempotency_key=c.key,
                    earned_on=c.earned_on,
                    expires_at=rules.expiry_for(now, months=policy.expiry_months, tz=tz_of[c.customer_id]),
                )
            )
        PointsEntry.objects.bulk_create(entries, batch_size=1000)
        accounts_save((accounts[i] for i in {e.customer_id for e in entries}), now=now)
    return entries


def _streak_candidates(e: dict, day, streak, rules_live: list[EarningRule]) -> list[_Candidate]:
    """A check-in that arrives late may complete the streak on the days after it too;
    the per-day keys make paying a day twice impossible."""
    candidates = []
    for rule in rules_live:
        d = day
        while d <= streak.end:
            length = streak.length_on(d)
            if rules.streak_pays(length, rule.streak_days):
                candidates.append(
                    _Candidate(
                        e["customer_id"],
                        rule,
                        rule.points,
                        f"rule:{rule.code}:{d}",
                        d,
                        f"{rule.name} ({length})",
                        f"event:{e['id']}",
                    )
                )
            d += timedelta(days=1)
    return candidates


def _invite_candidates(e: dict, day, rules_live: list[EarningRule]) -> list[_Candidate]:
    """One payment per invitee, to the invitee and to whoever invited them."""
    cid = e["customer_id"]
    candidates = []
    for rule in rules_live:
        candidates.append(
            _Candidate(cid, rule, rule.points, f"rule:{rule.code}:invitee:{cid}", day, rule.name, f"event:{e['id']}")
        )
        if e["customer__referred_by_id"]:
            candidates.append(
                _Candidate(
                    e["customer__referred_by_id"],
                    rule,
                    rule.points,
                    f"rule:{rule.code}:inviter-of:{cid}",
                    day,
                    rule.name,
                    f"event:{e['id']}",
                )
            )
    return candidates


def _event_candidates(e: dict, by_kind: dict[str, list[EarningRule]], streaks: dict[int, list]) -> list[_Candidate]:
    """What the rules in their active period at the event's time would pay for it."""
    day = rules.local_date(e["occurred_at"], e["customer__timezone"])
    cid = e["customer_id"]
    live = {kind: [r for r in kind_rules if _in_period(r, e["occurred_at"])] for kind, kind_rules in by_kind.items()}
    if e["type"] == "checkin":
        candidates = [
            _Candidate(cid, rule, rule.points, f"rule:{rule.code}:{day}", day, rule.name, f"event:{e['id']}")
            for rule in live.get(RuleKind.CHECKIN, [])
        ]
        streak = next((s for s in streaks.get(cid, ()) if s.start <= day <= s.end), None)
        if streak:
            candidates += _streak_candidates(e, day, streak, live.get(RuleKind.STREAK, []))
        return candidates
    if e["type"] in ("content_accepted", "activity_joined"):
        kind = RuleKind.CONTENT if e["type"] == "content_accepted" else RuleKind.ACTIVITY
        return [
            _Candidate(cid, rule, rule.points, f"rule:{rule.code}:event:{e['id']}", day, rule.name, f"event:{e['id']}")
            for rule in live.get(kind, [])
        ]
    if e["type"] == "invite_accepted":
        return _invite_candidates(e, day, live.get(RuleKind.INVITE, []))
    return []


def event_rules_apply(*, event_ids: list[int], now: datetime | None = None) -> int:
    """Pays the event-driven rules (check-in, streak, content, activity, invite) for these events."""
    now = now or timezone.now()
    by_kind = _active_rules()
    # Every rule-triggering type, even with its rule off: badges count these events too.
    events = list(
        Event.objects.filter(pk__in=event_ids, type__in=set(RULE_EVENT_TYPES.values())).values(
            "id", "customer_id", "type", "occurred_at", "customer__timezone", "customer__referred_by_id"
        )
    )
    checkin_customers = {e["customer_id"] for e in events if e["type"] == "checkin"}
    streaks: dict[int, list] = {}
    if checkin_customers and by_kind.get(RuleKind.STREAK):
        first_day = min(
            rules.local_date(e["occurred_at"], e["customer__timezone"]) for e in events if e["type"] == "checkin"
        )
        streaks = checkin_streaks(customer_ids=checkin_customers, ending_on_or_after=first_day)
    candidates = [c for e in events for c in _event_candidates(e, by_kind, streaks)]
    entries = _post_candidates(candidates, now=now)
    customers = {e["customer_id"] for e in events} | {
        e["customer__referred_by_id"]
        for e in events
        if e["type"] == "invite_accepted" and e["customer__referred_by_id"]
    }
    badges_award(customer_ids=customers, now=now)
    levels_update(customer_ids={e.customer_id for e in entries}, now=now)
    return len(entries)


def order_rules_apply(*, order_ids: list[int], now: datetime | None = None) -> int:
    """Brings the purchase points of these orders in line with their status: a paid
    order holds its points; a refunded or cancelled one has them taken back (at most
    what the balance holds — points already spent stay spent).

    Runs under the customers' account locks and reads the orders' status under them,
    so two tasks for one order (paid, refunded, paid again, queued close together)
    serialise and the later one acts on the latest status. An order paid again after
    a refund earns again what was taken back, once: every earn reversed so far starts
    a new generation of its key, and the standing earn dedupes a retry."""
    now = now or timezone.now()
    customer_ids = set(Order.objects.filter(pk__in=order_ids).values_list("customer_id", flat=True))
    if not customer_ids:
        return 0
    purchase_rules = _active_rules().get(RuleKind.PURCHASE, [])
    with transaction.atomic():
        accounts = accounts_lock(customer_ids)
        orders = list(
            Order.objects.filter(pk__in=order_ids).values(
                "id", "external_id", "customer_id", "amount", "status", "occurred_at", "customer__timezone"
            )
        )
        by_ref = {f"order:{o['external_id']}": o for o in orders}
        # Undone orders first: take back what their standing earns gave.
        undone = {ref: o for ref, o in by_ref.items() if o["status"] != OrderStatus.PAID}
        to_reverse = (
            PointsEntry.objects.filter(
                customer_id__in=customer_ids,
                source=EntrySource.ORDER,
                kind=EntryKind.EARN,
                source_ref__in=list(undone),
                reversed_by__isnull=True,
            ).order_by("id")
            if undone
            else []
        )
        reversals = [
            r
            for entry in to_reverse
            if (
                r := reversal_build(
                    accounts[entry.customer_id],
                    entry,
                    reason=f"order {undone[entry.source_ref]['status']}",
                    source=EntrySource.ORDER,
                    now=now,
                    tz=undone[entry.source_ref]["customer__timezone"],
                )
            )
        ]
        PointsEntry.objects.bulk_create(reversals, batch_size=1000)
        accounts_save((accounts[i] for i in {r.customer_id for r in reversals}), now=now)
        # Paid orders: what each (order, rule) has earned and had taken back so far.
        paid = {ref: o for ref, o in by_ref.items() if o["status"] == OrderStatus.PAID}
        history = (
            {
                (row["source_ref"], row["rule_id"]): row
                for row in PointsEntry.objects.filter(
                    customer_id__in=customer_ids,
                    source=EntrySource.ORDER,
                    kind=EntryKind.EARN,
                    source_ref__in=list(paid),
                )
                .values("source_ref", "rule_id")
                .annotate(
                    earns=Count("id"),
                    reversed=Count("reversed_by"),
                    earned=Sum("amount"),
                    taken_back=Sum("reversed_by__amount"),
                )
            }
            if paid
            else {}
        )
        candidates = []
        for ref, o in paid.items():
            day = rules.local_date(o["occurred_at"], o["customer__timezone"])
            for rule in (r for r in purchase_rules if _in_period(r, o["occurred_at"])):
                points = rules.purchase_points(o["amount"], rule.points_per_yuan)
                past = history.get((ref, rule.pk))
                generation = past["earns"] if past else 0
                if past and past["reversed"] < past["earns"]:
                    continue  # an earn stands: the order holds its points already
                if past:  # paid again after a refund: earn back what was taken back
                    points -= past["earned"] + (past["taken_back"] or 0)
                key = f"rule:{rule.code}:order:{o['id']}" + (f":{generation}" if generation else "")
                if points > 0:
                    candidates.append(
                        _Candidate(o["customer_id"], rule, points, key, day, rule.name, ref, EntrySource.ORDER)
                    )
        written = len(reversals) + len(_post_candidates(candidates, now=now))
    levels_update(customer_ids=customer_ids, now=now)
    return written
