"""``manage.py seed_demo_tickets``: the demo's ticket queue, written through the ticket
services so every ticket has what a real one has (priority basis, SLA targets, history).

About 200 tickets over the last 30 days, across the three teams, every status and
priority: older ones mostly answered and resolved or closed (a few resolved late, so
their resolution target is breached), recent ones new, in progress or waiting on the
customer, a few left unanswered past their first-response target (the escalation sweep
marks them on its first run), some reopened by the customer, one merged. About half of
the resolved tickets have a CSAT answer. The demo operators are put into the teams
(through ``rule_save``, audited) so the queue shows them something, and a few canned
replies are added. Deterministic for a ``--seed`` and ``--now``; a database that has
tickets already gets only the teams and canned replies."""

import random
import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from feedback.models import CannedReply, CsatResponse, Status, Team, TeamCode, Ticket
from feedback.services import rules
from feedback.services import tickets as services
from users.models import Customer

# team → (lead, members) by demo username (users.management.commands.seed_demo's accounts)
DEMO_TEAMS = {
    TeamCode.PRODUCT: ("admin", ["community", "operator"]),
    TeamCode.TECH: ("admin", ["operator"]),
    TeamCode.OPERATIONS: ("operator", ["operator", "community"]),
}

DEMO_CANNED = [
    (
        "收到反馈 Acknowledge",
        "您好，{{ customer_name }}：感谢您的反馈（工单 #{{ ticket_id }}），我们已经在处理，有进展会第一时间告诉您。"
        "\nHi {{ customer_name }}, thanks for ticket #{{ ticket_id }}: we are on it and will update you soon.",
        "",
    ),
    (
        "需要更多信息 Need details",
        "您好，{{ customer_name }}：为了尽快解决「{{ subject }}」，请告诉我们订单号和出现问题的时间。"
        "\nHi {{ customer_name }}, to sort out “{{ subject }}” please send us the order number and when it happened.",
        "complaint",
    ),
    (
        "已解决 Resolved",
        "您好，{{ customer_name }}：问题已经解决，如还有疑问请直接回复。——{{ operator_name }}"
        "\nHi {{ customer_name }}, this is fixed now; reply here if anything is still wrong. — {{ operator_name }}",
        "",
    ),
    (
        "建议已记录 Suggestion noted",
        "感谢您的建议！我们已把它加入产品需求池，上线后会通知您。"
        "\nThank you for the suggestion: it is on the product team's list and we will tell you when it ships.",
        "suggestion",
    ),
]

# category, impact, severity, difficulty, subject, bodies ({n}: a number that varies)
DEMO_TOPICS = [
    ("complaint", "many", "major", "hard", "支付失败，提示网络错误", [
        "下单时点击支付一直转圈，最后提示网络错误，订单号 {n}。",
        "微信支付失败三次了，提示网络错误，订单 {n} 还没付款成功。",
    ]),
    ("complaint", "one", "major", "easy", "优惠券无法使用", [
        "满99减10的券在结算页不能选，订单 {n}。",
        "领到的优惠券一直显示不可用，购物车金额 {n} 元。",
    ]),
    ("complaint", "many", "critical", "hard", "App crashes when opening the points mall", [
        "The app closes as soon as I open the points mall (version 5.{n}).",
        "Points mall crash on Android every time, build {n}.",
    ]),
    ("complaint", "one", "minor", "easy", "物流信息一直不更新", [
        "订单 {n} 的物流三天没有更新了。",
        "快递单号查不到，订单 {n}。",
    ]),
    ("complaint", "all", "critical", "hard", "Login code SMS never arrives", [
        "I tried {n} times and no verification code came.",
        "收不到登录验证码，试了 {n} 次。",
    ]),
    ("suggestion", "many", "minor", "easy", "希望增加深色模式", [
        "晚上用 App 太亮了，希望能有深色模式。",
        "Please add a dark mode, my eyes hurt at night ({n}).",
    ]),
    ("suggestion", "one", "minor", "hard", "建议支持积分转赠给好友", [
        "我有 {n} 积分用不完，希望可以送给家人。",
        "积分能不能转给朋友？我有 {n} 分。",
    ]),
    ("suggestion", "many", "minor", "hard", "Export my order history to Excel", [
        "I need my last {n} orders in a spreadsheet for expenses.",
        "希望可以导出订单记录，最近 {n} 笔。",
    ]),
    ("emotional", "one", "major", "easy", "等了一个星期还没发货，非常失望", [
        "订单 {n} 付款一个星期了还没发货，太让人失望了。",
        "说好的次日达，等了 {n} 天，真的很生气。",
    ]),
    ("emotional", "one", "minor", "easy", "Very disappointed with the refund process", [
        "My refund for order {n} has taken two weeks. Not happy.",
        "退款 {n} 元拖了两周，体验很差。",
    ]),
    ("question", "one", "minor", "easy", "积分什么时候到账？", [
        "订单 {n} 确认收货了，积分什么时候到？",
        "签到的积分没有显示，账户里还是 {n} 分。",
    ]),
    ("question", "one", "minor", "easy", "How do I change my phone number?", [
        "I have a new number and cannot find where to change it ({n}).",
        "换了手机号，怎么修改绑定？尾号 {n}。",
    ]),
    ("question", "one", "minor", "easy", "会员等级怎么升级？", [
        "我现在成长值 {n}，还差多少升到金卡？",
        "How many points do I need for the next level? I have {n}.",
    ]),
]  # fmt: skip

DEMO_REPLIES = [
    "您好，感谢反馈，我们正在核实，请稍候。Thanks, we are looking into it.",
    "已经联系相关同事处理，今天内给您答复。We have passed this to the team and will reply today.",
    "麻烦提供一下截图和订单号，方便我们排查。Could you send a screenshot and the order number?",
]
DEMO_CUSTOMER_REPLIES = ["截图发给你们了。Screenshot attached above.", "订单号在上面，请尽快处理，谢谢。", "还是不行。"]
DEMO_NOTES = ["已在技术群同步。Raised in the tech channel.", "疑似与昨天的发布有关。Maybe yesterday's release."]
CSAT_COMMENTS = ["", "", "处理很快，谢谢！", "Quick and friendly.", "希望下次更快一点。", "问题解决了。"]

# (share of the tickets, age range in hours, how its story goes) — see _story
PLAN = [
    (0.40, (72, 720), "closed"),
    (0.10, (72, 720), "resolved"),
    (0.03, (600, 720), "resolved_late"),
    (0.03, (30, 96), "unanswered"),
    (0.04, (72, 400), "reopened"),
    (0.12, (0.1, 3), "new"),
    (0.14, (2, 72), "in_progress"),
    (0.10, (4, 96), "waiting"),
    (0.04, (6, 72), "resumed"),
]


def _demo_users() -> dict[str, object]:
    names = {lead for lead, _ in DEMO_TEAMS.values()} | {m for _, members in DEMO_TEAMS.values() for m in members}
    return {u.username: u for u in get_user_model().objects.filter(username__in=names, is_active=True)}


def demo_teams_staff() -> int:
    """Puts the demo operators into the teams (audited); returns how many teams changed."""
    users, changed = _demo_users(), 0
    for team in Team.objects.filter(code__in=list(DEMO_TEAMS)).select_related("lead"):
        lead_name, member_names = DEMO_TEAMS[team.code]
        members = [users[n] for n in member_names if n in users]
        wanted_lead = users.get(lead_name)
        stored = sorted(team.members.values_list("username", flat=True))
        if stored == sorted(u.username for u in members) and team.lead_id == getattr(wanted_lead, "pk", None):
            continue
        team.lead = wanted_lead
        rules.rule_save(obj=team, actor="seed_demo_tickets", changed_fields=["lead", "members"], members=members)
        changed += 1
    return changed


def demo_canned_replies() -> int:
    existing = set(CannedReply.objects.values_list("name", flat=True))
    added = 0
    for name, body, category in DEMO_CANNED:
        if name not in existing:
            rules.rule_save(obj=CannedReply(name=name, body=body, category=category), actor="seed_demo_tickets")
            added += 1
    return added


class _Story:
    """One ticket's life, told through the services at instants before ``end``."""

    def __init__(self, rng: random.Random, end: datetime, members: dict[int, list]):
        self.rng, self.end, self.members = rng, end, members

    def at(self, start: datetime, low_hours: float, high_hours: float) -> datetime:
        return min(start + timedelta(hours=self.rng.uniform(low_hours, high_hours)), self.end)

    def take(self, ticket: Ticket, at: datetime) -> None:
        people = self.members.get(ticket.team_id) or []
        if people:
            services.ticket_assign(
                ticket=ticket, team=ticket.team, assignee=self.rng.choice(people), actor=None, now=at
            )

    def reply(self, ticket: Ticket, at: datetime, then: str | None = None) -> None:
        author = ticket.assignee if ticket.assignee_id else None
        services.ticket_reply(ticket=ticket, body=self.rng.choice(DEMO_REPLIES), actor=author, then=then, now=at)

    def customer(self, ticket: Ticket, at: datetime) -> None:
        services.ticket_customer_reply(ticket=ticket, body=self.rng.choice(DEMO_CUSTOMER_REPLIES), now=at)

    def tell(self, ticket: Ticket, story: str, opened: datetime) -> None:
        """``story``: closed, resolved, resolved_late, unanswered, reopened, new, in_progress, waiting, resumed."""
        if story in ("new", "unanswered"):
            if story == "new" and self.rng.random() < 0.4:
                services.ticket_transition(ticket=ticket, action="triage", now=self.at(opened, 0, 0.1))
            return
        taken = self.at(opened, 0.05, 0.5)
        self.take(ticket, taken)
        ticket.refresh_from_db()
        replied = self.at(taken, 0.1, 3)
        if self.rng.random() < 0.25:
            services.ticket_note(ticket=ticket, body=self.rng.choice(DEMO_NOTES), actor=ticket.assignee, now=replied)
        if story == "in_progress":
            self.reply(ticket, replied)
            return
        self.reply(ticket, replied, then="wait")
        if story == "waiting":
            return
        back = self.at(replied, 1, 20)
        self.customer(ticket, back)
        if story == "resumed":
            return
        late = story == "resolved_late"
        solved = self.at(back, 300, 500) if late else self.at(back, 0.5, 30)
        services.ticket_transition(ticket=ticket, action="resolve", actor=ticket.assignee, now=solved)
        if story == "reopened":
            self.customer(ticket, self.at(solved, 2, 24))
        elif story == "closed":
            services.ticket_transition(
                ticket=ticket, action="close", actor=ticket.assignee, now=self.at(solved, 24, 72)
            )


def _stories(count: int, rng: random.Random) -> list[tuple[str, float]]:
    sizes = [round(share * count) for share, _ages, _story in PLAN]
    sizes[0] += count - sum(sizes)  # rounding's remainder: closed, the commonest story
    out = []
    for size, (_share, (low, high), story) in zip(sizes, PLAN, strict=True):
        out += [(story, rng.uniform(low, high)) for _ in range(max(size, 0))]
    return sorted(out, key=lambda s: -s[1])  # oldest first: ids grow with time, as in real life


def demo_tickets_write(*, count: int, seed: int, end: datetime) -> dict[str, int]:
    rng = random.Random(seed)
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:5000])
    picked = rng.sample(customer_ids, min(len(customer_ids), count))
    customers = Customer.objects.in_bulk(picked)
    teams = {t.code: t for t in Team.objects.all()}
    members = {t.pk: list(t.members.filter(is_active=True).order_by("pk")) for t in teams.values()}
    story = _Story(rng, end, members)
    written = {"tickets": 0, "csat": 0}
    for i, (kind, age) in enumerate(_stories(count, rng)):
        category, impact, severity, difficulty, subject, bodies = rng.choice(DEMO_TOPICS)
        opened = end - timedelta(hours=age)
        customer = customers.get(rng.choice(picked)) if picked and rng.random() < 0.9 else None
        ticket = services.ticket_open(
            customer=customer,
            category=category,
            subject=subject,
            body=rng.choice(bodies).format(n=rng.randint(2, 98_000)),
            source=rng.choice(["app", "app", "app", "service", "social"]),
            impact=impact if rng.random() < 0.7 else "one",
            severity=severity if rng.random() < 0.7 else rng.choice(["minor", "major", "critical"]),
            difficulty=difficulty,
            idempotency_key=f"demo:{seed}:{i}",
            now=opened,
        ).ticket
        story.tell(ticket, kind, opened)
        written["tickets"] += 1
    written["merged"] = _merge_one(end)
    written["csat"] = _csat_answers(rng, end)
    return written


def _merge_one(end: datetime) -> int:
    """The newest two open tickets of one customer about one subject: the later is merged into the earlier."""
    open_ = Ticket.objects.filter(status__in=[Status.NEW, Status.TRIAGED], customer__isnull=False).order_by("pk")
    first = open_.first()
    if first is None:
        return 0
    duplicate = services.ticket_open(
        customer=first.customer,
        category=first.category,
        subject=first.subject,
        body=first.body + "\n（重复提交 sent twice）",
        idempotency_key=f"demo:duplicate:{first.pk}",
        now=end - timedelta(minutes=5),
    ).ticket
    services.ticket_merge(duplicate=duplicate, into=first, actor=None, now=end - timedelta(minutes=1))
    return 1


def _csat_answers(rng: random.Random, end: datetime) -> int:
    # The answers as the survey link stores them; written directly, as history (no invitation goes out).
    done = Ticket.objects.filter(status__in=[Status.RESOLVED, Status.CLOSED], merged_into__isnull=True)
    rows = []
    for ticket in done.only("pk", "team_id", "resolved_at", "closed_at"):
        if rng.random() < 0.5:
            answered = min((ticket.resolved_at or ticket.closed_at or end) + timedelta(hours=rng.uniform(1, 48)), end)
            score = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 3, 6, 9])[0]
            rows.append(
                CsatResponse(
                    ticket=ticket,
                    score=score,
                    comment=rng.choice(CSAT_COMMENTS),
                    team_id=ticket.team_id,
                    answered_at=answered,
                )
            )
    CsatResponse.objects.bulk_create(rows)
    return len(rows)


def demo_tickets_delete() -> int:
    """Every ticket with its messages, history, targets and answers (for ``bin/demo --reset``)."""
    with transaction.atomic():
        Ticket.objects.filter(merged_into__isnull=False).update(merged_into=None)
        return Ticket.objects.all().delete()[1].get("feedback.Ticket", 0)


class Command(BaseCommand):
    help = (
        "Fills the ticket queue with about 200 demo tickets through the ticket services, puts the demo operators "
        "into the teams and adds canned replies. A database with tickets keeps them (teams and replies only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=200)
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--now", default=None, help="the instant the history ends (ISO 8601, default: now)")
        parser.add_argument("--delete", action="store_true", help="delete every ticket and stop")

    def handle(self, *args, tickets, seed, now, delete, **options):
        if delete:
            self.stdout.write(f"deleted {demo_tickets_delete()} tickets")
            return
        started = time.monotonic()
        end = self._end(now)
        teams, canned = demo_teams_staff(), demo_canned_replies()
        self.stdout.write(f"demo teams: {teams} staffed; canned replies: {canned} added")
        if Ticket.objects.exists():
            self.stdout.write(f"demo tickets: {Ticket.objects.count()} there already")
            return
        if tickets < 1:
            raise CommandError("--tickets must be positive.")
        # History: nobody is mailed about tickets that were answered weeks ago.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
            written = demo_tickets_write(count=tickets, seed=seed, end=end)
        by_status = dict(Ticket.objects.values_list("status").annotate(n=Count("pk")).order_by())
        self.stdout.write(
            f"demo tickets: {written['tickets'] + written['merged']} ("
            + ", ".join(f"{s} {by_status.get(s, 0)}" for s in Status.values)
            + f"), CSAT answers {written['csat']}, in {time.monotonic() - started:.1f} s"
        )

    @staticmethod
    def _end(now: str | None) -> datetime:
        if now is None:
            return timezone.now().replace(second=0, microsecond=0)
        end = parse_datetime(now)
        if end is None:
            raise CommandError(f"--now {now!r} is not an ISO 8601 date and time.")
        return timezone.make_aware(end, UTC) if timezone.is_naive(end) else end
