"""Feedback benchmark on PostgreSQL: 200,000 tickets with realistic histories.

    .venv/bin/python bench/feedback.py [--tickets 200000] [--reuse]

1. Creates a fresh database (``opsdesk_bench_feedback``), migrates it (the shipped teams,
   calendar, SLA policies and matrix come with it), and loads set-based in SQL: 20,000
   customers, ``--tickets`` tickets over two years (15% still open, spread over the
   four open statuses; the rest resolved or closed), 2-5 messages and 2-4 history rows
   per ticket, both SLA targets per ticket — open ones running with due times spread
   from an hour ago to two days ahead (so a sweep has real work: about 2% fall due),
   a fifth of them warned and breached already — then VACUUM ANALYZE.
2. Times, in-process on that database:
   * the escalation sweep (``sla_escalation_sweep``) over all open tickets, twice: the
     first run escalates what is due, the second finds nothing new (the every-minute case);
   * the queue page's server time (Django's test client, an admin who sees every queue
     and an operator who sees one team's), plain and with filters, ``--repeat`` times each;
   * each report query (``feedback.selectors.reports``) over the last 90 days.
3. Prints one JSON line; targets: sweep <= 2 s, queue page <= 300 ms, reports <= 1 s.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from _common import database_recreate, database_url, emit, load_average, machine, manage, server_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = "opsdesk_bench_feedback"


def _loaded(cur, tickets: int) -> bool:
    try:
        cur.execute("SELECT count(*) FROM feedback_ticket")
        return cur.fetchone()[0] == tickets
    except Exception:  # no table yet
        return False


LOAD_SQL = [
    # Customers: only what a ticket needs.
    """
    INSERT INTO users_customer (external_id, name, nickname, phone, email, gender, city, timezone, channel,
        consent_push, consent_sms, consent_email, consent_wechat, consent_in_app, do_not_contact,
        paid_orders, paid_amount, created_at, updated_at, signup_at)
    SELECT 'fb' || g, '', 'nick' || g, '', '', 'unknown', '', 'Asia/Shanghai', 'organic',
        true, true, true, true, true, false, 0, 0, now() - interval '800 days', now(), now() - interval '800 days'
    FROM generate_series(1, 20000) g
    """,
    """
    CREATE UNLOGGED TABLE bench_ticket_stage AS
    SELECT g, random() AS r_status, random() AS r_cat, random() AS r_pri, random() AS r_age, random() AS r_resp,
           random() AS r_res, random() AS r_due, random() AS r_breached,
           (SELECT min(id) FROM users_customer) + (random() * 19999)::int AS customer_id
    FROM generate_series(1, %(tickets)s) g
    """,
    """
    INSERT INTO feedback_ticket (customer_id, source, category, subject, body, status, priority, impact, severity,
        difficulty, priority_basis, team_id, created_at, updated_at, first_responded_at, resolved_at, closed_at)
    SELECT s.customer_id,
        (ARRAY['app', 'service', 'social', 'api'])[1 + g %% 4],
        c.category,
        (ARRAY['登录失败 ', 'Payment stuck ', '积分没到账 ', 'App crashes on start ', '希望增加深色模式 '])[1 + g %% 5]
            || g,
        'Customer report ' || g || '：详细描述',
        CASE WHEN s.r_status < 0.15 THEN (ARRAY['new', 'triaged', 'in_progress', 'waiting_on_customer'])[1 + g %% 4]
             WHEN s.r_status < 0.55 THEN 'resolved' ELSE 'closed' END,
        CASE WHEN s.r_pri < 0.1 THEN 'low' WHEN s.r_pri < 0.6 THEN 'normal' WHEN s.r_pri < 0.85 THEN 'high'
             WHEN s.r_pri < 0.97 THEN 'urgent' ELSE 'crisis' END,
        'one', 'minor', 'easy', '{"matrix": {"priority": "normal"}}'::jsonb,
        t.id,
        s.created_at, s.created_at,
        CASE WHEN s.r_status >= 0.15 OR s.r_resp < 0.6
             THEN s.created_at + make_interval(mins => (s.r_resp * 600)::int) END,
        CASE WHEN s.r_status >= 0.15 THEN s.created_at + make_interval(mins => 60 + (s.r_res * 4000)::int) END,
        CASE WHEN s.r_status >= 0.55 THEN s.created_at + make_interval(mins => 5000 + (s.r_res * 4000)::int) END
    FROM (
        SELECT *, CASE WHEN r_status < 0.15 THEN now() - make_interval(mins => (r_age * 14 * 1440)::int)
                       ELSE now() - interval '5 days' - make_interval(mins => (r_age * 720 * 1440)::int)
                  END AS created_at
        FROM bench_ticket_stage
    ) s
    CROSS JOIN LATERAL (
        SELECT (ARRAY['suggestion', 'complaint', 'emotional', 'question'])[1 + floor(s.r_cat * 4)::int] AS category
    ) c
    JOIN feedback_team t ON t.code = CASE c.category WHEN 'suggestion' THEN 'product' WHEN 'complaint' THEN 'tech'
                                                     ELSE 'operations' END
    ORDER BY s.g
    """,
    # Both targets per ticket. Open ones run; a fifth were warned and breached already;
    # the rest fall due between an hour ago and two days ahead.
    """
    INSERT INTO feedback_slatarget (ticket_id, kind, target_seconds, business_hours, calendar_id, warn_share,
        started_at, consumed_seconds, running_since, paused_seconds, paused_since, due_at, warn_at, stopped_at,
        state, warned_at, breached_at)
    SELECT t.id, k.kind, k.seconds, false, NULL, 0.80, t.created_at, 0,
        CASE WHEN open THEN t.created_at END, 0, NULL,
        CASE WHEN open THEN due END,
        CASE WHEN open AND NOT pre_breached THEN due - make_interval(secs => (k.seconds * 0.2)::int) END,
        CASE WHEN NOT open THEN t.resolved_at END,
        CASE WHEN open THEN 'running' WHEN t.id %% 10 = 0 THEN 'breached' ELSE 'met' END,
        CASE WHEN pre_breached OR (NOT open AND t.id %% 10 = 0) THEN due END,
        CASE WHEN pre_breached OR (NOT open AND t.id %% 10 = 0) THEN due END
    FROM feedback_ticket t
    CROSS JOIN (VALUES ('first_response', 14400), ('resolution', 259200)) AS k(kind, seconds)
    CROSS JOIN LATERAL (
        SELECT t.status IN ('new', 'triaged', 'in_progress', 'waiting_on_customer') AS open,
               (t.id %% 5 = 0) AS pre_breached,
               now() - interval '1 hour' + make_interval(secs => ((t.id * 7919) %% 176400)) AS due
    ) x
    """,
    """
    INSERT INTO feedback_message (ticket_id, kind, author_id, body, created_at, idempotency_key)
    SELECT t.id, (ARRAY['customer', 'reply', 'note', 'reply', 'customer'])[k], NULL,
           'Message ' || k || ' on ticket ' || t.id, t.created_at + make_interval(mins => (k * 37)::int), NULL
    FROM feedback_ticket t CROSS JOIN LATERAL generate_series(1, 2 + t.id %% 4) k
    """,
    """
    INSERT INTO feedback_ticketevent (ticket_id, at, actor_id, actor_label, action, changes)
    SELECT t.id, t.created_at + make_interval(mins => (k * 41)::int), NULL, 'bench',
           (ARRAY['opened', 'triage', 'assigned', 'resolve'])[k], '{}'::jsonb
    FROM feedback_ticket t CROSS JOIN LATERAL generate_series(1, 2 + t.id %% 3) k
    """,
    "DROP TABLE bench_ticket_stage",
]


def _load(tickets: int) -> float:
    from django.db import connection, transaction

    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        for statement in LOAD_SQL:
            cur.execute(statement, {"tickets": tickets})
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return round(time.monotonic() - started, 1)


def _users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from feedback.models import Team

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "a@example.com", "bench-admin-password-2026"
    )
    operator = User.objects.filter(username="bench-operator").first()
    if operator is None:
        operator = User.objects.create_user("bench-operator", password="bench-operator-password-2026")
        operator.groups.add(Group.objects.get(name="operator"))
        Team.objects.get(code="tech").members.add(operator)
    return admin, operator


QUEUE_URLS = [
    "/feedback/",
    "/feedback/?team=tech&priority=high",
    "/feedback/?status=in_progress&category=complaint",
    "/feedback/?sla=breached",
    "/feedback/?sla=warning&team=operations",
    "/feedback/?assignee=none&status=new",
    "/feedback/?status=all&q=Payment",
]


def _time_pages(user, urls: list[str], repeat: int) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(user)
    out = {}
    for url in urls:
        assert client.get(url).status_code == 200, url  # warm-up, and the page works
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, url
        out[url] = {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
    return out


def _time_sweep() -> dict:
    from django.utils import timezone

    from feedback.services.escalation import sla_escalation_sweep

    runs = []
    for _ in range(2):
        started = time.perf_counter()
        counts = sla_escalation_sweep(now=timezone.now())
        runs.append({"s": round(time.perf_counter() - started, 3), "counts": counts})
    return {"first_s": runs[0]["s"], "first_counts": runs[0]["counts"], "idle_s": runs[1]["s"]}


def _time_reports(repeat: int) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from feedback.selectors import reports

    end = timezone.now()
    start = end - timedelta(days=90)
    out = {}
    for name, call in reports.bench_calls(start=start, end=end).items():
        call()  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        out[name] = round(statistics.median(times), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    args = parser.parse_args()

    url = database_url(DB)
    env = server_env(url, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "OPS_VAR_DIR", "LOG_LEVEL")})
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    import django
    import psycopg2

    reuse = False
    if args.reuse:
        try:
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                reuse = _loaded(cur, args.tickets)
        except psycopg2.Error:
            reuse = False
    if not reuse:
        database_recreate(DB)
        manage(env, "migrate", "-v0")
    django.setup()
    load_s = None if reuse else _load(args.tickets)
    admin, operator = _users()
    from feedback.models import OPEN_STATUSES, Ticket

    open_tickets = Ticket.objects.filter(status__in=OPEN_STATUSES).count()
    sweep = _time_sweep()
    queue_admin = _time_pages(admin, QUEUE_URLS, args.repeat)
    queue_operator = _time_pages(operator, QUEUE_URLS[:4], args.repeat)
    reports_s = _time_reports(max(3, args.repeat // 3))
    queue_worst = max(v["p50_ms"] for v in [*queue_admin.values(), *queue_operator.values()])
    emit(
        {
            "tickets": args.tickets,
            "open_tickets": open_tickets,
            "load_s": load_s,
            "sweep_s": sweep["first_s"],
            "sweep_counts": sweep["first_counts"],
            "sweep_idle_s": sweep["idle_s"],
            "queue_worst_p50_ms": queue_worst,
            "queue_admin": queue_admin,
            "queue_operator": queue_operator,
            "reports_s": reports_s,
            "ok": sweep["first_s"] <= 2 and queue_worst <= 300 and max(reports_s.values()) <= 1,
            "machine": machine(),
            "load_average": load_average(),
        }
    )


if __name__ == "__main__":
    main()
