"""Writes for the points ledger, rules, expiry, levels, badges and the points mall.

Every path that moves points runs in one transaction holding the account row
lock (``SELECT … FOR UPDATE``; on SQLite the IMMEDIATE transaction serialises
writers), writes append-only entries and moves the cached balance with them.
Idempotency keys are unique per customer, so a replay finds the first entry
and answers it; a reused key with a different body is a 409.
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from core.errors import ApplicationError, Conflict
from core.services import audit_record
from users.models import Customer

from . import rules
from .models import (
    RULE_EVENT_TYPES,
    Badge,
    BadgeKind,
    CustomerBadge,
    EarningRule,
    EntryKind,
    EntrySource,
    IncentivePolicy,
    Level,
    PointsAccount,
    PointsEntry,
    Redemption,
    Reward,
    RuleKind,
)

MAX_POINTS_PER_ENTRY = 10_000_000


def policy_get() -> IncentivePolicy:
    policy = IncentivePolicy.objects.order_by("pk").first()
    return policy or IncentivePolicy()


def request_hash(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _lock_accounts(customer_ids) -> dict[int, PointsAccount]:
    """Creates missing accounts, then locks them all in id order (no deadlocks between batches)."""
    ids = sorted(set(customer_ids))
    locked = PointsAccount.objects.select_for_update().filter(customer_id__in=ids).order_by("customer_id")
    accounts = {a.customer_id: a for a in locked}
    if len(accounts) < len(ids):
        # Only customers without an account yet pay for the insert (a race inserts once).
        PointsAccount.objects.bulk_create([PointsAccount(customer_id=i) for i in ids if i not in accounts],
                                          ignore_conflicts=True)
        accounts = {a.customer_id: a for a in locked.all()}
    return accounts


def _due_to_expire(customer_id: int, at: datetime) -> int:
    """See rules.py: the part of lapsed credits no debit has consumed."""
    agg = PointsEntry.objects.filter(customer_id=customer_id).aggregate(
        lapsed=Sum("amount", filter=Q(expires_at__lte=at)),
        debits=Sum("amount", filter=Q(amount__lt=0, expires_at__isnull=True)),
    )
    return max(0, (agg["lapsed"] or 0) + (agg["debits"] or 0))


@dataclass
class PostedEntry:
    entry: PointsEntry
    replayed: bool


def _new_entry(account: PointsAccount, *, now: datetime, **fields) -> PointsEntry:
    """Builds an entry and moves the (locked) account with it; the caller saves both."""
    account.balance += fields["amount"]
    account.growth_value += fields.get("growth", 0)
    return PointsEntry(customer_id=account.customer_id, balance_after=account.balance, created_at=now, **fields)


def _expire_now(account: PointsAccount, *, now: datetime) -> PointsEntry | None:
    due = _due_to_expire(account.customer_id, now)
    if not due:
        return None
    entry = _new_entry(
        account, now=now, kind=EntryKind.EXPIRE, amount=-due, reason="points expired",
        source=EntrySource.EXPIRY, idempotency_key=f"expire:{now.isoformat()}",
    )
    entry.save()
    return entry


def points_post(
    *, customer: Customer, kind: str, amount: int, reason: str, idempotency_key: str,
    source: str = EntrySource.API, source_ref: str = "", operator=None, now: datetime | None = None,
) -> PostedEntry:
    """Earns (``amount`` > 0), spends (``amount`` > 0, taken off) or adjusts (signed) points.

    A spend beyond the balance is a 409 and writes nothing; so is a negative
    adjustment beyond the balance. Lapsed points are expired first, so they
    cannot be spent.
    """
    if kind not in (EntryKind.EARN, EntryKind.SPEND, EntryKind.ADJUST):
        raise ApplicationError(f"kind must be earn, spend or adjust, not {kind!r}.", code="invalid_kind")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ApplicationError("amount must be a whole number of points.", code="invalid_amount")
    if (kind == EntryKind.ADJUST and amount == 0) or (kind != EntryKind.ADJUST and amount <= 0):
        raise ApplicationError("amount must be a positive whole number of points.", code="invalid_amount")
    if abs(amount) > MAX_POINTS_PER_ENTRY:
        raise ApplicationError(f"amount is above the largest single entry ({MAX_POINTS_PER_ENTRY}).", code="invalid_amount")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("A reason is required.", code="reason_required")
    signed = -amount if kind == EntryKind.SPEND else amount
    fingerprint = request_hash(kind=kind, amount=amount, reason=reason)
    now = now or timezone.now()
    policy = policy_get()

    with transaction.atomic():
        account = _lock_accounts([customer.pk])[customer.pk]
        first = PointsEntry.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if first is not None:
            if first.request_hash != fingerprint:
                raise Conflict(
                    "This idempotency_key was already used with a different request.",
                    code="idempotency_key_reused", details={"idempotency_key": idempotency_key},
                )
            return PostedEntry(first, replayed=True)
        if signed < 0:
            _expire_now(account, now=now)
            if account.balance + signed < 0:
                raise Conflict(
                    "Not enough points: the balance would go below zero.",
                    code="insufficient_points", details={"balance": account.balance, "requested": amount},
                )
        entry = _new_entry(
            account, now=now, kind=kind, amount=signed, reason=reason, source=source, source_ref=source_ref,
            idempotency_key=idempotency_key, request_hash=fingerprint, operator=operator,
            expires_at=rules.expiry_for(now, months=policy.expiry_months, tz=customer.timezone) if signed > 0 else None,
        )
        entry.save()
        account.save(update_fields=["balance", "growth_value", "updated_at"])
        if operator is not None:
            audit_record(actor=operator, action=f"points.{kind}", obj=entry,
                         changes={"customer": customer.external_id, "amount": signed, "reason": reason})
    return PostedEntry(entry, replayed=False)


def _reversal_for(account: PointsAccount, original: PointsEntry, *, reason: str, source: str, now: datetime, tz: str) -> PointsEntry | None:
    """Builds the entry that undoes ``original`` (the caller saves it). Reversing a
    credit takes back at most what the balance holds (points already spent stay
    spent) and reduces that credit's lot, so it carries the lot's expiry."""
    if original.amount > 0:
        amount = -min(original.amount, account.balance)
        if amount == 0:
            return None
        expires_at = original.expires_at
    else:
        amount = -original.amount
        expires_at = rules.expiry_for(now, months=policy_get().expiry_months, tz=tz)
    return _new_entry(
        account, now=now, kind=EntryKind.REVERSE, amount=amount, growth=-original.growth,
        reason=reason, source=source, source_ref=original.source_ref, reverses=original,
        idempotency_key=f"reverse:{original.pk}", expires_at=expires_at,
    )


# --- Earning rules, applied in the worker -------------------------------------


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
    return (rule.active_from is None or rule.active_from <= at) and (rule.active_until is None or at < rule.active_until)


def _post_candidates(candidates: list[_Candidate], *, now: datetime) -> list[PointsEntry]:
    """Writes rule entries in bulk: one lock of the accounts, one read of the keys and
    of today's capped totals, one insert, one account update."""
    if not candidates:
        return []
    policy = policy_get()
    customer_ids = {c.customer_id for c in candidates}
    tz_of = dict(Customer.objects.filter(pk__in=customer_ids).values_list("id", "timezone"))
    with transaction.atomic():
        accounts = _lock_accounts(customer_ids)
        taken = set(
            PointsEntry.objects.filter(customer_id__in=customer_ids, idempotency_key__in={c.key for c in candidates})
            .values_list("customer_id", "idempotency_key")
        )
        capped_rules = {c.rule.pk for c in candidates if c.rule.daily_cap}
        paid_today: dict[tuple, int] = defaultdict(int)
        if capped_rules:
            rows = (
                PointsEntry.objects.filter(customer_id__in=customer_ids, rule_id__in=capped_rules,
                                           earned_on__in={c.earned_on for c in candidates})
                .values("customer_id", "rule_id", "earned_on").annotate(total=Sum("amount"))
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
            entries.append(_new_entry(
                accounts[c.customer_id], now=now, kind=EntryKind.EARN, amount=points,
                growth=points if c.rule.counts_for_growth else 0, reason=c.reason, source=c.source,
                source_ref=c.source_ref, rule=c.rule, idempotency_key=c.key, earned_on=c.earned_on,
                expires_at=rules.expiry_for(now, months=policy.expiry_months, tz=tz_of[c.customer_id]),
            ))
        PointsEntry.objects.bulk_create(entries, batch_size=1000)
        touched = {e.customer_id for e in entries}
        PointsAccount.objects.bulk_update([accounts[i] for i in touched], ["balance", "growth_value"], batch_size=1000)
    return entries


def event_rules_apply(*, event_ids: list[int], now: datetime | None = None) -> int:
    """Pays the event-driven rules (check-in, streak, content, activity, invite) for these events."""
    from users.models import Event

    now = now or timezone.now()
    by_kind = _active_rules()
    # Every rule-triggering type, even with its rule off: badges count these events too.
    events = list(
        Event.objects.filter(pk__in=event_ids, type__in=set(RULE_EVENT_TYPES.values()))
        .values("id", "customer_id", "type", "occurred_at", "customer__timezone", "customer__referred_by_id")
    )
    candidates: list[_Candidate] = []
    checkin_customers = {e["customer_id"] for e in events if e["type"] == "checkin"}
    streaks: dict[int, dict] = {}
    if checkin_customers and by_kind.get(RuleKind.STREAK):
        days: dict[int, list] = defaultdict(list)
        for cid, at, tz in Event.objects.filter(customer_id__in=checkin_customers, type="checkin").values_list(
            "customer_id", "occurred_at", "customer__timezone"
        ):
            days[cid].append(rules.local_date(at, tz))
        streaks = {cid: rules.streak_lengths(d) for cid, d in days.items()}
    for e in events:
        day = rules.local_date(e["occurred_at"], e["customer__timezone"])
        cid = e["customer_id"]
        live = {kind: [r for r in kind_rules if _in_period(r, e["occurred_at"])] for kind, kind_rules in by_kind.items()}
        if e["type"] == "checkin":
            for rule in live.get(RuleKind.CHECKIN, []):
                candidates.append(_Candidate(cid, rule, rule.points, f"rule:{rule.code}:{day}", day, rule.name, f"event:{e['id']}"))
            lengths = streaks.get(cid, {})
            for rule in live.get(RuleKind.STREAK, []):
                # A check-in that arrives late may complete the streak on the days after it
                # too; the per-day keys make paying a day twice impossible.
                d = day
                while d in lengths:
                    if rules.streak_pays(lengths[d], rule.streak_days):
                        candidates.append(_Candidate(cid, rule, rule.points, f"rule:{rule.code}:{d}", d,
                                                     f"{rule.name} ({lengths[d]})", f"event:{e['id']}"))
                    d += timedelta(days=1)
        elif e["type"] in ("content_accepted", "activity_joined"):
            kind = RuleKind.CONTENT if e["type"] == "content_accepted" else RuleKind.ACTIVITY
            for rule in live.get(kind, []):
                candidates.append(_Candidate(cid, rule, rule.points, f"rule:{rule.code}:event:{e['id']}", day, rule.name, f"event:{e['id']}"))
        elif e["type"] == "invite_accepted":
            for rule in live.get(RuleKind.INVITE, []):
                # One payment per invitee, to the invitee and to whoever invited them.
                candidates.append(_Candidate(cid, rule, rule.points, f"rule:{rule.code}:invitee:{cid}", day, rule.name, f"event:{e['id']}"))
                if e["customer__referred_by_id"]:
                    candidates.append(_Candidate(e["customer__referred_by_id"], rule, rule.points,
                                                 f"rule:{rule.code}:inviter-of:{cid}", day, rule.name, f"event:{e['id']}"))
    entries = _post_candidates(candidates, now=now)
    customers = {e["customer_id"] for e in events} | {
        e["customer__referred_by_id"] for e in events if e["type"] == "invite_accepted" and e["customer__referred_by_id"]
    }
    badges_award(customer_ids=customers, now=now)
    levels_update(customer_ids={e.customer_id for e in entries}, now=now)
    return len(entries)



def order_rules_apply(*, order_ids: list[int], now: datetime | None = None) -> int:
    """Pays purchase points on paid orders and reverses them when an order is refunded or cancelled."""
    from users.models import Order, OrderStatus

    now = now or timezone.now()
    orders = list(Order.objects.filter(pk__in=order_ids).values(
        "id", "external_id", "customer_id", "amount", "status", "occurred_at", "customer__timezone"))
    written = 0
    purchase_rules = _active_rules().get(RuleKind.PURCHASE, [])
    candidates = []
    for o in orders:
        if o["status"] != OrderStatus.PAID:
            continue
        day = rules.local_date(o["occurred_at"], o["customer__timezone"])
        for rule in (r for r in purchase_rules if _in_period(r, o["occurred_at"])):
            points = rules.purchase_points(o["amount"], rule.points_per_yuan)
            if points > 0:
                candidates.append(_Candidate(o["customer_id"], rule, points, f"rule:{rule.code}:order:{o['id']}", day,
                                             rule.name, f"order:{o['external_id']}", EntrySource.ORDER))
    written += len(_post_candidates(candidates, now=now))
    undone = {f"order:{o['external_id']}": o for o in orders if o["status"] != OrderStatus.PAID}
    if undone:
        with transaction.atomic():
            accounts = _lock_accounts({o["customer_id"] for o in undone.values()})
            to_reverse = PointsEntry.objects.filter(
                customer_id__in=list(accounts), source=EntrySource.ORDER, kind=EntryKind.EARN,
                source_ref__in=list(undone), reversed_by__isnull=True,
            ).order_by("id")
            reversals = [
                r for entry in to_reverse
                if (r := _reversal_for(accounts[entry.customer_id], entry, reason=f"order {undone[entry.source_ref]['status']}",
                                       source=EntrySource.ORDER, now=now, tz=undone[entry.source_ref]["customer__timezone"]))
            ]
            PointsEntry.objects.bulk_create(reversals, batch_size=1000)
            PointsAccount.objects.bulk_update(list(accounts.values()), ["balance", "growth_value"], batch_size=1000)
            written += len(reversals)
    levels_update(customer_ids={o["customer_id"] for o in orders}, now=now)
    return written


# --- Expiry --------------------------------------------------------------------


def points_expire(*, now: datetime | None = None, chunk: int = 5000) -> int:
    """Writes an expire entry for every customer with lapsed, unconsumed points.

    The due amounts are computed in one GROUP BY over the ledger; accounts are
    locked and written a chunk at a time. Running it twice expires nothing twice.
    """
    now = now or timezone.now()
    due_rows = (
        PointsEntry.objects.values("customer_id")
        .annotate(
            lapsed=Sum("amount", filter=Q(expires_at__lte=now), default=0),
            debits=Sum("amount", filter=Q(amount__lt=0, expires_at__isnull=True), default=0),
        )
        .annotate(due=F("lapsed") + F("debits"))
        .filter(due__gt=0)
        .order_by("customer_id")
        .values_list("customer_id", "due")
    )
    due = list(due_rows)
    written = 0
    for start in range(0, len(due), chunk):
        part = dict(due[start:start + chunk])
        with transaction.atomic():
            accounts = _lock_accounts(part)
            # Recheck under the lock: a spend may have expired some of it meanwhile.
            fresh = dict(
                PointsEntry.objects.filter(customer_id__in=part).values("customer_id").annotate(
                    lapsed=Sum("amount", filter=Q(expires_at__lte=now), default=0),
                    debits=Sum("amount", filter=Q(amount__lt=0, expires_at__isnull=True), default=0),
                ).annotate(due=F("lapsed") + F("debits")).filter(due__gt=0).values_list("customer_id", "due")
            )
            entries = [
                _new_entry(accounts[cid], now=now, kind=EntryKind.EXPIRE, amount=-amount, reason="points expired",
                           source=EntrySource.EXPIRY, idempotency_key=f"expire:{now.isoformat()}")
                for cid, amount in fresh.items()
            ]
            PointsEntry.objects.bulk_create(entries, batch_size=1000)
            PointsAccount.objects.bulk_update([accounts[cid] for cid in fresh], ["balance"], batch_size=1000)
            written += len(entries)
    return written


# --- Levels and badges ---------------------------------------------------------


def levels_update(*, customer_ids=None, now: datetime | None = None, recompute_growth: bool = False) -> int:
    """Moves accounts to the level their growth value earns, with the downgrade grace.

    With ``recompute_growth`` the growth value is first recomputed set-based as the
    sum of growth earned within the policy's window (the nightly job does this)."""
    now = now or timezone.now()
    policy = policy_get()
    steps = [rules.LevelStep(lv.pk, lv.threshold) for lv in Level.objects.all()]
    accounts = PointsAccount.objects.all()
    if customer_ids is not None:
        accounts = accounts.filter(customer_id__in=list(customer_ids))
    if recompute_growth:
        since = now - timezone.timedelta(days=policy.growth_window_days)
        from django.db.models import OuterRef, Subquery
        from django.db.models.functions import Coalesce

        growth = (PointsEntry.objects.filter(customer_id=OuterRef("customer_id"), created_at__gt=since)
                  .order_by().values("customer_id").annotate(g=Sum("growth")).values("g"))
        accounts.update(growth_value=Coalesce(Subquery(growth), 0))
    if not steps:
        return 0
    by_id = {s.id: s for s in steps}
    changed = []
    # Accounts are few per event batch; the nightly pass walks them in chunks of ids.
    for account in accounts.only("customer_id", "growth_value", "level_id", "level_below_since").iterator(chunk_size=2000):
        level, below = rules.next_level(
            current=by_id.get(account.level_id), growth=account.growth_value, below_since=account.level_below_since,
            now=now, levels=steps, grace_days=policy.level_grace_days, margin_pct=policy.level_downgrade_margin_pct,
        )
        new_id = level.id if level else None
        if new_id != account.level_id or below != account.level_below_since:
            account.level_id, account.level_below_since = new_id, below
            changed.append(account)
    PointsAccount.objects.bulk_update(changed, ["level", "level_below_since"], batch_size=1000)
    return len(changed)


def badges_award(*, customer_ids, now: datetime | None = None) -> int:
    """Awards each active badge once to the customers who now meet it."""
    from django.db.models import Count

    from users.models import Customer as C
    from users.models import Event

    now = now or timezone.now()
    customer_ids = set(customer_ids)
    badges = list(Badge.objects.filter(is_active=True))
    if not customer_ids or not badges:
        return 0
    awards = []
    counts = {
        BadgeKind.CONTENT_COUNT: dict(Event.objects.filter(customer_id__in=customer_ids, type="content_accepted")
                                      .values("customer_id").annotate(n=Count("id")).values_list("customer_id", "n")),
        BadgeKind.INVITE_COUNT: dict(C.objects.filter(referred_by_id__in=customer_ids, events__type="invite_accepted")
                                     .values("referred_by_id").annotate(n=Count("id", distinct=True))
                                     .values_list("referred_by_id", "n")),
    }
    if any(b.kind == BadgeKind.CHECKIN_STREAK for b in badges):
        days: dict[int, list] = defaultdict(list)
        for cid, at, tz in Event.objects.filter(customer_id__in=customer_ids, type="checkin").values_list(
            "customer_id", "occurred_at", "customer__timezone"
        ):
            days[cid].append(rules.local_date(at, tz))
        counts[BadgeKind.CHECKIN_STREAK] = {cid: max(rules.streak_lengths(d).values()) for cid, d in days.items()}
    for badge in badges:
        for cid, value in counts.get(badge.kind, {}).items():
            if value >= badge.threshold:
                awards.append(CustomerBadge(customer_id=cid, badge=badge, awarded_at=now))
    CustomerBadge.objects.bulk_create(awards, ignore_conflicts=True)
    return len(awards)


# --- Points mall ---------------------------------------------------------------


def reward_redeem(*, customer: Customer, reward_id: int, idempotency_key: str, now: datetime | None = None) -> tuple[Redemption, bool]:
    """Spends the reward's price and takes one from stock in one transaction.

    Stock is taken with a conditional UPDATE (``stock > 0``), so concurrent
    redemptions never oversell; a failed spend rolls the stock back with it."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_accounts([customer.pk])[customer.pk]
        first = Redemption.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if first is not None:
            if first.reward_id != reward_id:
                raise Conflict("This idempotency_key was already used for another reward.",
                               code="idempotency_key_reused", details={"idempotency_key": idempotency_key})
            return first, True
        reward = Reward.objects.filter(pk=reward_id).first()
        if reward is None:
            raise ApplicationError(f"No reward with id {reward_id}.", code="not_found", status=404)
        if not reward.is_active or (reward.valid_from and reward.valid_from > now) or (reward.valid_until and reward.valid_until <= now):
            raise Conflict("This reward is not available for redemption now.", code="reward_unavailable")
        if reward.stock is not None and not Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1):
            raise Conflict("This reward is out of stock.", code="out_of_stock")
        _expire_now(account, now=now)
        if account.balance < reward.points_price:
            raise Conflict("Not enough points: the balance would go below zero.", code="insufficient_points",
                           details={"balance": account.balance, "requested": reward.points_price})
        entry = _new_entry(account, now=now, kind=EntryKind.SPEND, amount=-reward.points_price,
                           reason=f"redeemed: {reward.name}", source=EntrySource.REDEMPTION,
                           source_ref=f"reward:{reward.pk}", idempotency_key=f"redeem:{idempotency_key}",
                           request_hash=request_hash(reward=reward.pk))
        entry.save()
        account.save(update_fields=["balance", "growth_value", "updated_at"])
        redemption = Redemption.objects.create(customer=customer, reward=reward, points=reward.points_price,
                                               idempotency_key=idempotency_key, spend_entry=entry, created_at=now)
    return redemption, False


def redemption_cancel(*, redemption: Redemption, actor=None, now: datetime | None = None) -> Redemption:
    """Gives the points back and puts the item back in stock. Cancelling twice changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_accounts([redemption.customer_id])[redemption.customer_id]
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        _reversal_for(account, redemption.spend_entry, reason="redemption cancelled", source=EntrySource.REDEMPTION,
                      now=now, tz=redemption.customer.timezone).save()
        account.save(update_fields=["balance", "growth_value", "updated_at"])
        Reward.objects.filter(pk=redemption.reward_id, stock__isnull=False).update(stock=F("stock") + 1)
        redemption.status, redemption.cancelled_at = Redemption.Status.CANCELLED, now
        redemption.save(update_fields=["status", "cancelled_at"])
        if actor is not None:
            audit_record(actor=actor, action="redemption.cancel", obj=redemption)
    return redemption


def ledger_reconcile() -> list[dict]:
    """Every account whose cached balance differs from the sum of its entries (or
    whose latest entry's balance_after disagrees). Empty means no drift."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    sums = PointsEntry.objects.filter(customer_id=OuterRef("customer_id")).order_by().values("customer_id").annotate(s=Sum("amount")).values("s")
    last = PointsEntry.objects.filter(customer_id=OuterRef("customer_id")).order_by("-id").values("balance_after")[:1]
    drift = (
        PointsAccount.objects.annotate(ledger=Coalesce(Subquery(sums), 0), last_after=Coalesce(Subquery(last), 0))
        .exclude(balance=F("ledger"), last_after=F("ledger"))
        .values("customer_id", "balance", "ledger", "last_after")
    )
    orphans = (
        PointsEntry.objects.exclude(customer_id__in=PointsAccount.objects.values("customer_id"))
        .values("customer_id").annotate(ledger=Sum("amount")).values("customer_id", "ledger")
    )
    return [*drift, *[{**o, "balance": None, "last_after": None} for o in orphans]]

