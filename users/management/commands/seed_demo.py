"""``manage.py seed_demo``: a realistic demo population in seconds.

The population comes from ``users.demo`` (seeded numpy, no database); this
command only writes it, in bulk: customers with ``bulk_create`` (their ids
come back for the foreign keys), then tags, orders and events as plain rows
— PostgreSQL ``COPY`` on PostgreSQL, ``executemany`` in chunks elsewhere —
because building a model instance per row would cost more than the insert.
Raw rows skip ``auto_now``, so the timestamps are filled in here.
"""

import io
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max, ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.bulkload import bulk_load
from core.roles import ADMIN, COMMUNITY_MANAGER, OPERATOR, VIEWER, roles_sync
from users.demo import Demo, DemoSpec, demo_generate
from users.models import CONSENT_FIELDS, Customer, CustomerTag, Event, Order
from users.services import customer_order_stats_refresh

# username, role group, password, is_staff
DEMO_USERS = [
    ("admin", ADMIN, "opsdesk-admin-2026", True),
    ("operator", OPERATOR, "opsdesk-operator-2026", False),
    ("community", COMMUNITY_MANAGER, "opsdesk-community-2026", False),
    ("viewer", VIEWER, "opsdesk-viewer-2026", False),
]
CHUNK = 5000
COPY_CHUNK = 50_000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _insert_rows(model, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    """Inserts plain rows (values already in database form) into ``model``'s table."""
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    rows = list(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({cols}) FROM STDIN"
            for start in range(0, len(rows), COPY_CHUNK):
                buf = io.StringIO()
                buf.writelines("\t".join(map(_copy_value, row)) + "\n" for row in rows[start : start + COPY_CHUNK])
                buf.seek(0)
                cursor.copy_expert(sql, buf)
        else:
            sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(sql, rows[start : start + CHUNK])
    return len(rows)


def _db_datetimes(values: np.ndarray) -> list[str]:
    """UTC ``datetime64[s]`` values as the text each backend stores (what Django itself would send)."""
    text = np.datetime_as_string(values, unit="s")
    if connection.vendor == "postgresql":
        return [f"{t}+00:00" for t in text.tolist()]
    return [t.replace("T", " ") for t in text.tolist()]  # SQLite: naive UTC, as str(datetime)


def _db_now() -> str:
    return _db_datetimes(np.array([np.datetime64(timezone.now().replace(tzinfo=None), "s")]))[0]


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def demo_data_delete() -> dict[str, int]:
    """Deletes every order, event, tag and customer (orders first: they protect customers)."""
    counts = {}
    for label, model in (("orders", Order), ("events", Event), ("tags", CustomerTag)):
        counts[label] = model.objects.all().delete()[0]
    Customer.objects.filter(referred_by__isnull=False).update(referred_by=None)
    try:
        counts["customers"] = Customer.objects.all().delete()[0]
    except (ProtectedError, RestrictedError) as exc:
        raise CommandError(f"Cannot delete the customers: other records still point at them ({exc.args[0]}).") from exc
    return counts


def demo_write(demo: Demo) -> dict[str, int]:
    c, stamp = demo.customers, _db_now()
    # Explicit ids: referred_by and the other foreign keys are known before anything is written.
    base = (Customer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    ids = np.arange(base, base + len(c), dtype=np.int64)
    referrer = [int(ids[r]) if r >= 0 else None for r in c.referrer.tolist()]
    consent = {ch: v.tolist() for ch, v in c.consent.items()}
    birthday = [b.isoformat() if b else None for b in c.birthday]
    columns = [
        "id",
        "external_id",
        "name",
        "nickname",
        "phone",
        "email",
        "gender",
        "birthday",
        "city",
        "timezone",
        "signup_at",
        "channel",
        "referred_by",
        *[CONSENT_FIELDS[ch] for ch in consent],
        "do_not_contact",
        "paid_orders",
        "paid_amount",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    ]
    n = len(c)
    customers = _insert_rows(
        Customer,
        columns,
        zip(
            ids.tolist(),
            c.external_id,
            c.name,
            c.nickname,
            c.phone,
            c.email,
            c.gender,
            birthday,
            c.city,
            c.timezone,
            _db_datetimes(c.signup_at),
            c.channel,
            referrer,
            *consent.values(),
            c.do_not_contact.tolist(),
            [0] * n,
            ["0.00"] * n,
            [None] * n,
            [None] * n,
            [stamp] * n,
            [stamp] * n,
            strict=True,
        ),
    )
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Customer]):
            cursor.execute(sql)

    tags = _insert_rows(
        CustomerTag, ["customer", "tag"], ((int(ids[i]), tag) for i in range(n) for tag in sorted(set(c.tags[i])))
    )

    o, currency = demo.orders, Order._meta.get_field("currency").get_default()
    e = demo.events
    orders = _insert_rows(
        Order,
        ["external_id", "customer", "amount", "currency", "status", "occurred_at", "created_at", "updated_at"],
        zip(
            o.external_id,
            ids[o.customer].tolist(),
            map(_cents, o.amount_cents.tolist()),
            [currency] * len(o),
            o.status,
            _db_datetimes(o.occurred_at),
            [stamp] * len(o),
            [stamp] * len(o),
            strict=True,
        ),
    )
    events = _insert_rows(
        Event,
        ["customer", "type", "occurred_at", "properties", "external_id", "dedupe_key", "created_at"],
        zip(
            ids[e.customer].tolist(),
            e.type,
            _db_datetimes(e.occurred_at),
            e.properties,
            [None] * len(e),
            e.dedupe_key,
            [stamp] * len(e),
            strict=True,
        ),
    )
    referred = sum(r is not None for r in referrer)
    return {"customers": customers, "referred": referred, "tags": tags, "orders": orders, "events": events}


def demo_users_ensure() -> list[str]:
    """Creates the demo operator accounts, or resets their passwords and roles."""
    if Group.objects.filter(name__in=[u[1] for u in DEMO_USERS]).count() < len(DEMO_USERS):
        roles_sync()
    # Password hashing is deliberately slow and releases the GIL: hash the four side by side.
    with ThreadPoolExecutor(max_workers=len(DEMO_USERS)) as pool:
        hashes = list(pool.map(make_password, [u[2] for u in DEMO_USERS]))
    User = get_user_model()
    for (username, role, _password, staff), hashed in zip(DEMO_USERS, hashes, strict=True):
        user = User.objects.filter(username=username).first() or User(username=username)
        user.password = hashed
        user.is_staff, user.is_superuser, user.is_active = staff, False, True
        user.save()
        user.groups.set([Group.objects.get(name=role)])
    return [u[0] for u in DEMO_USERS]


class Command(BaseCommand):
    help = (
        "Fills the database with a realistic, deterministic demo population (customers, invite chains, "
        "orders, events) and the demo operator accounts. Same --seed and --now → same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=20_000)
        parser.add_argument(
            "--orders", type=int, default=200_000, help="orders in all, a few percent of them refunded or cancelled"
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--now", default=None, help="the instant the history ends (ISO 8601, default: the current time)"
        )
        parser.add_argument("--days", type=int, default=730, help="how far back signups go")
        parser.add_argument("--reset", action="store_true", help="delete every customer, order, event and tag first")
        parser.add_argument("--no-users", action="store_true", help="do not create the demo operator accounts")
        parser.add_argument(
            "--users-only",
            action="store_true",
            help="only create (or reset the passwords of) the demo operator accounts",
        )

    def handle(self, *args, customers, orders, seed, now, days, reset, no_users, users_only=False, **options):
        started = time.monotonic()
        if users_only:
            self.stdout.write("Demo accounts ready: " + ", ".join(demo_users_ensure()))
            return
        if customers < 1 or orders < 0 or days < 1:
            raise CommandError("--customers and --days must be positive and --orders not negative.")
        if now is None:
            end = timezone.now().replace(microsecond=0)
        else:
            end = parse_datetime(now)
            if end is None:
                raise CommandError(f"--now {now!r} is not an ISO 8601 date and time.")
            if timezone.is_naive(end):
                end = timezone.make_aware(end, UTC)
        existing = Customer.objects.count()
        if existing and not reset:
            raise CommandError(
                f"The database already holds {existing} customers. Run seed_demo with --reset to delete every "
                "customer, order, event and tag first (only do that on a demo database)."
            )

        demo = demo_generate(DemoSpec(customers=customers, orders=orders, seed=seed, now=end, days=days))
        generated = time.monotonic()
        if connection.vendor == "sqlite":
            # The default 2 MB page cache makes every index insert of a big load go to disk.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size = -262144")
        with transaction.atomic():
            with bulk_load(Order, Event, analyze=(Customer,)):
                deleted = demo_data_delete() if reset else {}
                counts = demo_write(demo)
            customer_order_stats_refresh()
        usernames = [] if no_users else demo_users_ensure()
        elapsed = time.monotonic() - started

        statuses = Counter(demo.orders.status)
        paid = int(demo.orders.amount_cents[np.array(demo.orders.status) == "paid"].sum())
        event_types = Counter(demo.events.type)
        if deleted:
            self.stdout.write("Deleted " + ", ".join(f"{n} {label}" for label, n in deleted.items()) + ".")
        self.stdout.write(
            f"Seeded demo data (seed {seed}, history up to {end.isoformat()}):\n"
            f"  customers {counts['customers']:,} ({counts['referred']:,} referred), tags {counts['tags']:,}\n"
            f"  orders    {counts['orders']:,} ("
            + ", ".join(f"{s} {statuses[s]:,}" for s in ("paid", "refunded", "cancelled"))
            + f"; paid amount {_cents(paid)})\n"
            f"  events    {counts['events']:,} (" + ", ".join(f"{t} {n:,}" for t, n in event_types.most_common()) + ")"
        )
        if usernames:
            self.stdout.write("  operator accounts: " + ", ".join(f"{u[0]} / {u[2]}" for u in DEMO_USERS))
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {elapsed:.1f} s (generate {generated - started:.1f} s, "
                f"write {elapsed - (generated - started):.1f} s)."
            )
        )
