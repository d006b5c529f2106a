"""``manage.py seed_demo_communities``: the demo's community groups, written through the
communities services so every row has what a real one has (audit rows, spans, versions,
alerts, incidents, the crisis ticket).

What it makes (sizes by option, defaults shown):

- **12 groups** across the platforms (``demo-`` codes): 10 owned by the demo
  ``community`` manager, 2 by ``admin`` — so the community manager sees only theirs.
- **Memberships** from the demo customers (``--members`` 300 a group): most joined
  months ago, some in the last ``--days``; a few left, some of those came back (two
  spans); two group admins and a handful of KOCs per group, some members invited by a
  KOC. Each member has a platform id (``wx-<group>-<n>``) the bots name them by.
- A **group admin** account (``groupadmin``, role group admin) given two of the
  manager's groups with ``can_post`` and ``can_handle_risk`` (分级管理).
- **Six approved SOP templates**, one of each SPEC kind (welcome, FAQ reply, activity
  announcement, daily topic, crisis statement, birthday greeting), in Chinese with
  variables and declared fields; written by ``community`` and approved by ``admin``
  (four-eyes: the services refuse an approval by the writer). The welcome template has
  a second version waiting for approval.
- **Keyword rules** (Chinese and English; keywords and RE2 patterns; severities from
  low to critical), saved by ``admin``; rules with a demo rule's name already there are
  kept.
- **Content calendar**: last week's and this week's posts for every group in the 7-2-1
  mix (7 everyday value, 2 surprise, 1 advanced a week); past posts mostly done (who
  and when) or skipped, today's and later ones planned — so the manager's home page
  has due posts.
- **``--days`` (30) whole days of bot traffic, and today so far,** through ``communities.services.ingest`` in batches
  of 1,000 (one insert a batch, never a query per message): messages, daily check-ins,
  and an activity with sign-ups. A few messages carry watched words: high-severity
  ones in one group only, so exactly one incident reaches the crisis-ticket severity;
  low and medium ones in others.
- **Risk actions**: a warning, a repeat that escalates to a mute, a removal.
- Then the **keyword scan** runs here, synchronously (``alerts.messages_scan``, the
  service the worker's task calls — the tasks the ingestion queued find nothing new
  later), one alert is dismissed as a false positive and one acknowledged, and
  **health** is rolled up over the days (``health.health_rollup``).

Idempotent: a database with any ``demo-`` group gets nothing new (only the group admin
account is ensured). Deterministic for a ``--seed`` relative to the current time (the
services stamp risk actions and alerts with the real clock, so there is no ``--now``).
``--delete`` removes the demo groups (with their memberships, posts, messages, alerts,
health), the demo templates and the demo keyword rules, for ``bin/demo --reset`` (the
crisis ticket is a ticket: ``seed_demo_tickets --delete``, run next, removes it).
Emails the scan would send the group owners are kept in memory: this is history."""

import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from communities.ingest_rows import CheckInRow, MessageRow, SignupRow
from communities.models import (
    Alert,
    AlertStatus,
    CommunityGroup,
    ContentClass,
    GroupStatus,
    KeywordRule,
    MemberRole,
    Membership,
    Platform,
    RiskReason,
    RiskStep,
    RuleKind,
    Severity,
    SopTemplate,
    TemplateKind,
)
from communities.selectors.calendar import week_start
from communities.services import alerts as alert_services
from communities.services import calendar as calendar_services
from communities.services import groups as group_services
from communities.services import health as health_services
from communities.services import ingest as ingest_services
from communities.services import risk as risk_services
from communities.services import templates as template_services
from core.accounts import account_create
from core.batch import ValidatedBatch
from core.roles import GROUP_ADMIN
from core.timezones import operator_timezone
from users.models import Customer

PREFIX = "demo-"
GROUP_ADMIN_USER = ("groupadmin", "opsdesk-groupadmin-2026")
BATCH = 1000

# code, name, platform, theme, tags, owner, capacity, messages a day, check-in share
DEMO_GROUPS = [
    ("demo-wx-newbie", "新手交流群", Platform.WECHAT, "新人引导", ["新人", "答疑"], "community", 500, 60, 0.12),
    ("demo-wx-vip", "金卡会员俱乐部", Platform.WECHAT, "高价值会员", ["VIP", "专属福利"], "community", 500, 45, 0.20),
    ("demo-wx-mom", "宝妈好物分享群", Platform.WECHAT, "母婴好物", ["母婴", "晒单"], "community", 500, 70, 0.10),
    ("demo-wecom-perks", "企微福利官", Platform.WECOM, "优惠提醒", ["优惠券", "秒杀"], "community", 1000, 30, 0.05),
    ("demo-qq-digital", "数码玩家QQ群", Platform.QQ, "数码测评", ["数码", "测评"], "community", 1000, 80, 0.08),
    ("demo-forum-tips", "App论坛·省钱攻略", Platform.APP_FORUM, "省钱攻略", ["攻略"], "community", 2000, 25, 0.03),
    ("demo-douyin-fans", "抖音粉丝团", Platform.DOUYIN, "直播互动", ["直播", "粉丝"], "community", 500, 55, 0.06),
    ("demo-wx-shanghai", "上海同城会员群", Platform.WECHAT, "同城活动", ["同城", "上海"], "community", 500, 35, 0.10),
    ("demo-wx-beijing", "北京同城会员群", Platform.WECHAT, "同城活动", ["同城", "北京"], "community", 500, 30, 0.10),
    ("demo-wx-checkin", "每日打卡挑战群", Platform.WECHAT, "打卡养成", ["打卡", "积分"], "community", 500, 40, 0.45),
    ("demo-wx-koc", "KOC共创核心群", Platform.WECHAT, "产品共创", ["KOC", "内测"], "admin", 200, 50, 0.15),
    ("demo-wecom-beta", "内测体验官", Platform.WECOM, "新功能内测", ["内测"], "admin", 300, 20, 0.05),
]
# the group whose messages carry the high-severity words (one incident → one crisis ticket)
CRISIS_GROUP = "demo-wx-vip"
# the groups the demo group admin is given (can_post, can_handle_risk)
GROUP_ADMIN_GROUPS = ["demo-wx-newbie", "demo-wx-checkin"]

# code, name, kind, body, fields
DEMO_TEMPLATES = [
    (
        "demo-welcome",
        "新人欢迎语",
        TemplateKind.WELCOME,
        "欢迎 {{ nickname }} 加入「{{ group }}」！🎉\n新人福利：每天回复「签到」领积分，你现在有 {{ points }} 积分。"
        "\n群规见群公告，有问题随时 @{{ operator }}。",
        [],
    ),
    (
        "demo-faq-refund",
        "FAQ：退款多久到账",
        TemplateKind.FAQ,
        "{{ nickname }} 您好，订单 {{ order_no }} 的退款已受理，会在 {{ refund_days }} 个工作日内原路退回，"
        "请留意账户变动。如有疑问请私信 {{ operator }}。",
        [
            {"name": "order_no", "label": "订单号", "type": "order_number", "required": True},
            {"name": "refund_days", "label": "到账天数", "type": "number", "required": True},
        ],
    ),
    (
        "demo-activity",
        "活动预告",
        TemplateKind.ACTIVITY,
        "📢【{{ group }}】活动预告：{{ title }}\n时间：{{ event_date }}\n回复「报名」即可参加，参与就送积分，"
        "{{ level }}会员额外加倍！",
        [
            {"name": "title", "label": "活动名称", "type": "text", "required": True},
            {"name": "event_date", "label": "活动日期", "type": "date", "required": True},
        ],
    ),
    (
        "demo-daily-topic",
        "每日话题",
        TemplateKind.DAILY_TOPIC,
        "【今日话题 {{ today }}】{{ topic }}\n欢迎大家来聊聊～优质回答的小伙伴明天有惊喜 🎁",
        [{"name": "topic", "label": "话题", "type": "text", "required": True}],
    ),
    (
        "demo-crisis",
        "危机声明",
        TemplateKind.CRISIS,
        "各位群友：关于「{{ issue }}」，我们已经收到大家的反馈，正在紧急处理，{{ update_time }} 前会在群里同步进展。"
        "给大家带来不便，非常抱歉。——{{ operator }}",
        [
            {"name": "issue", "label": "事件", "type": "text", "required": True},
            {"name": "update_time", "label": "下次同步时间", "type": "text", "required": True},
        ],
    ),
    (
        "demo-birthday",
        "生日祝福",
        TemplateKind.BIRTHDAY,
        "🎂 {{ nickname }}，生日快乐！「{{ group }}」的小伙伴们祝你天天开心～生日礼包已发到账户，"
        "当前等级：{{ level|default('会员', true) }}。",
        [],
    ),
]
WELCOME_V2 = (
    "欢迎 {{ nickname }} 加入「{{ group }}」！🎉\n新人专享：完成首次签到再送 50 积分（你现在有 {{ points }} 积分）。"
    "\n群规见群公告，有问题随时 @{{ operator }}。"
)

# name, kind, keyword or pattern, severity
DEMO_RULES = [
    ("退款", RuleKind.KEYWORD, "退款", Severity.MEDIUM),
    ("投诉", RuleKind.KEYWORD, "投诉", Severity.HIGH),
    ("维权", RuleKind.KEYWORD, "维权", Severity.CRITICAL),
    ("骗子", RuleKind.KEYWORD, "骗子", Severity.HIGH),
    ("scam", RuleKind.KEYWORD, "scam", Severity.HIGH),
    ("加微信引流", RuleKind.KEYWORD, "加我微信", Severity.LOW),
    ("差评", RuleKind.KEYWORD, "差评", Severity.LOW),
    (
        "refund not received",
        RuleKind.PATTERN,
        r"refund(not|never|still)(received|arrived|came|pending)",
        Severity.MEDIUM,
    ),
    ("退款未到账", RuleKind.PATTERN, r"退款.{0,8}(没|未|还没)(到账|收到|退)", Severity.MEDIUM),
]

CHATTER = [
    "早上好呀～今天也要元气满满",
    "这个新品有人买了吗？好用吗",
    "昨天的直播错过了，有回放吗？",
    "签到积分可以换什么？",
    "刚收到货，包装很用心 👍",
    "求推荐性价比高的款",
    "周末有活动吗？",
    "Thanks for the tips, very helpful!",
    "Anyone tried the new points mall rewards?",
    "优惠券叠加规则是怎样的？",
    "晒一下我的新入手，颜值很高",
    "群主辛苦啦",
    "物流好快，隔天就到了",
    "有没有一起拼单的",
    "这个价格比上次便宜好多",
    "请问会员日是哪天？",
    "哈哈哈哈太真实了",
    "学到了，收藏了",
    "Good morning everyone ☀️",
    "客服回复很快，点赞",
]
# (text, where): "crisis" only in CRISIS_GROUP, "any" in any group
WATCHED = [
    ("买了三次都是坏的，我要投诉！", "crisis"),
    ("这家店就是骗子，大家别买了", "crisis"),
    ("准备去消协维权了，有一起的吗", "crisis"),
    ("Is this a scam? My order vanished.", "crisis"),
    ("申请退款三天了还没到账", "any"),
    ("退 款什么时候能处理啊", "any"),
    ("My refund still pending after a week", "any"),
    ("不满意就给差评", "any"),
]
SPAM = "加我微信 wx8888 领内部优惠券，先到先得"
FALSE_POSITIVE = "退款已经到账了，谢谢客服小姐姐"

# content class → (kind, title) choices
POST_PLANS = {
    ContentClass.VALUE: [
        (TemplateKind.DAILY_TOPIC, "今日话题：你最常用的省钱小技巧"),
        (TemplateKind.DAILY_TOPIC, "今日话题：晒晒你的收货好物"),
        (TemplateKind.FAQ, "FAQ：退款多久到账"),
        (TemplateKind.FAQ, "FAQ：积分怎么用"),
        (TemplateKind.WELCOME, "新人欢迎与群规提醒"),
        (TemplateKind.DAILY_TOPIC, "今日话题：本周最想买的一件东西"),
        (TemplateKind.OTHER, "使用小贴士：如何查看物流"),
    ],
    ContentClass.SURPRISE: [
        (TemplateKind.ACTIVITY, "限时抽奖：晒单赢免单"),
        (TemplateKind.BIRTHDAY, "本周寿星生日祝福"),
        (TemplateKind.ACTIVITY, "整点红包雨"),
    ],
    ContentClass.ADVANCED: [
        (TemplateKind.OTHER, "进阶：会员等级与权益全解析"),
        (TemplateKind.ACTIVITY, "KOC 共创：新品内测招募"),
    ],
}
POST_TEMPLATE = {
    TemplateKind.WELCOME: "demo-welcome",
    TemplateKind.FAQ: "demo-faq-refund",
    TemplateKind.ACTIVITY: "demo-activity",
    TemplateKind.DAILY_TOPIC: "demo-daily-topic",
    TemplateKind.BIRTHDAY: "demo-birthday",
}
POST_TIMES = [dtime(9, 0), dtime(12, 30), dtime(20, 0)]


@dataclass
class Span:
    member_id: str
    customer_id: int
    external_id: str
    joined_at: datetime
    left_at: datetime | None


def _users() -> dict[str, object]:
    names = ["admin", "community", GROUP_ADMIN_USER[0]]
    return {u.username: u for u in get_user_model().objects.filter(username__in=names, is_active=True)}


def group_admin_ensure(admin) -> object | None:
    """The demo group admin's account (created by ``admin`` through the accounts service)."""
    user = get_user_model().objects.filter(username=GROUP_ADMIN_USER[0]).first()
    if user is not None or admin is None:
        return user
    role = Group.objects.filter(name=GROUP_ADMIN).first()
    if role is None:
        return None
    return account_create(
        actor=admin,
        username=GROUP_ADMIN_USER[0],
        password=GROUP_ADMIN_USER[1],
        roles=[role],
        first_name="群管理员",
        email="groupadmin@example.com",
    )


def demo_groups_exist() -> bool:
    return CommunityGroup.objects.filter(code__startswith=PREFIX).exists()


def demo_communities_delete() -> dict[str, int]:
    """The demo groups with everything in them, the demo templates and rules (``--reset``)."""
    with transaction.atomic():
        groups = CommunityGroup.objects.filter(code__startswith=PREFIX).delete()[1].get("communities.CommunityGroup", 0)
        templates = SopTemplate.objects.filter(code__startswith=PREFIX).delete()[1].get("communities.SopTemplate", 0)
        rules = KeywordRule.objects.filter(name__in=[r[0] for r in DEMO_RULES]).delete()[0]
    return {"groups": groups, "templates": templates, "rules": rules}


class _Seeder:
    def __init__(self, *, seed: int, members: int, days: int, users: dict):
        self.rng = random.Random(seed)
        self.members, self.days, self.users = members, days, users
        self.now = timezone.now().replace(microsecond=0)
        self.tz = operator_timezone()
        self.today = self.now.astimezone(self.tz).date()
        self.groups: dict[str, CommunityGroup] = {}
        self.spans: dict[str, list[Span]] = {}
        self.counts: dict[str, int] = defaultdict(int)

    def owner(self, group: CommunityGroup):
        return self.users["community"] if group.owner_id == self.users["community"].pk else self.users["admin"]

    # --- groups, members, staff -----------------------------------------------------

    def make_groups(self) -> None:
        for code, name, platform, theme, tags, owner, capacity, _per_day, _checkin in DEMO_GROUPS:
            group = CommunityGroup(
                code=code,
                name=name,
                platform=platform,
                platform_group_id=f"{code}@demo",
                theme=theme,
                tags=tags,
                owner=self.users[owner],
                capacity=capacity,
                status=GroupStatus.ACTIVE,
                description=f"{theme} · 演示数据 demo data",
            )
            self.groups[code] = group_services.group_save(group=group, actor=self.users["admin"])
        self.counts["groups"] = len(self.groups)

    def make_members(self) -> None:
        pool = list(Customer.objects.order_by("pk").values_list("pk", "external_id")[:5000])
        if not pool:
            raise CommandError("There are no customers: run seed_demo first.")
        customers = Customer.objects.in_bulk([pk for pk, _x in pool])
        recent = self.now - timedelta(days=self.days)
        for code, group in self.groups.items():
            actor = self.owner(group)
            size = min(self.members, len(pool), group.capacity)
            picked = self.rng.sample(pool, size)
            spans: list[Span] = []
            kocs: list = []
            for i, (pk, external_id) in enumerate(picked):
                old = self.rng.random() < 0.8
                if old:
                    joined = self.now - timedelta(days=self.rng.uniform(self.days + 1, self.days + 180))
                else:
                    joined = recent + timedelta(seconds=self.rng.uniform(0, (self.now - recent).total_seconds() - 60))
                role = MemberRole.ADMIN if i < 2 else MemberRole.KOC if i < 8 else MemberRole.MEMBER
                if role != MemberRole.MEMBER:
                    joined = self.now - timedelta(days=self.days + 200 + i)
                member_id = f"wx-{code[len(PREFIX) :]}-{i}"
                inviter = customers[self.rng.choice(kocs)] if kocs and self.rng.random() < 0.15 else None
                span = group_services.member_join(
                    group=group,
                    customer=customers[pk],
                    role=role,
                    joined_at=joined,
                    platform_member_id=member_id,
                    invited_by=inviter,
                    actor=actor,
                )
                self.counts["memberships"] += 1
                if role == MemberRole.KOC:
                    kocs.append(pk)
                left = None
                base = max(joined, recent)
                room = (self.now - base).total_seconds() - 3 * 3600
                if role == MemberRole.MEMBER and room > 3600 and self.rng.random() < 0.08:
                    # left within the history; a third of them came back later
                    left = base + timedelta(seconds=self.rng.uniform(600, room))
                    group_services.member_leave(
                        group=group, customer=customers[pk], left_at=left, reason="退群 left", actor=actor
                    )
                    self.counts["left"] += 1
                    spans.append(Span(member_id, pk, external_id, joined, left))
                    if self.rng.random() < 0.35:
                        back = left + timedelta(hours=self.rng.uniform(2, 48))
                        if back < self.now:
                            group_services.member_join(
                                group=group,
                                customer=customers[pk],
                                joined_at=back,
                                platform_member_id=member_id,
                                actor=actor,
                            )
                            self.counts["rejoined"] += 1
                            spans.append(Span(member_id, pk, external_id, back, None))
                    continue
                spans.append(Span(member_id, pk, external_id, span.joined_at, None))
            self.spans[code] = spans

    def make_staff(self, group_admin) -> None:
        if group_admin is None:
            return
        for code in GROUP_ADMIN_GROUPS:
            group = self.groups.get(code)
            if group is None:
                continue
            span = Membership.objects.filter(group=group, role=MemberRole.ADMIN, left_at__isnull=True).first()
            group_services.staff_grant(
                group=group,
                user=group_admin,
                actor=self.owner(group),
                membership=span,
                can_post=True,
                can_handle_risk=True,
            )
            self.counts["group_staff"] += 1

    # --- templates and rules ---------------------------------------------------------

    def make_templates(self) -> dict[str, SopTemplate]:
        writer, approver = self.users["community"], self.users["admin"]
        made = {}
        for code, name, kind, body, fields in DEMO_TEMPLATES:
            template = SopTemplate.objects.filter(code=code).first()
            if template is None:
                template = template_services.template_create(
                    code=code, name=name, kind=kind, body=body, fields=fields, actor=writer
                )
                version = template.versions.get(number=1)
                template_services.version_approve(version=version, actor=approver, note="内容合规，同意使用")
                self.counts["templates"] += 1
            made[code] = template
        welcome = made["demo-welcome"]
        if welcome.versions.count() == 1:
            template_services.version_write(template=welcome, body=WELCOME_V2, actor=writer)
        return made

    def make_rules(self) -> None:
        existing = set(KeywordRule.objects.values_list("name", flat=True))
        for name, kind, pattern, severity in DEMO_RULES:
            if name in existing:
                continue
            rule = KeywordRule(name=name, kind=kind, pattern=pattern, severity=severity)
            alert_services.keyword_rule_save(rule=rule, actor=self.users["admin"])
            self.counts["rules"] += 1

    # --- the content calendar ------------------------------------------------------------

    def make_posts(self, templates: dict[str, SopTemplate], group_admin) -> None:
        this_week = week_start(self.today)
        for code, group in self.groups.items():
            actor = self.owner(group)
            doers = [actor] + ([group_admin] if group_admin is not None and code in GROUP_ADMIN_GROUPS else [])
            for start in (this_week - timedelta(days=7), this_week):
                classes = [ContentClass.VALUE] * 7 + [ContentClass.SURPRISE] * 2 + [ContentClass.ADVANCED]
                # one a day, and three more spread over the week
                days = list(range(7)) + self.rng.sample(range(7), 3)
                self.rng.shuffle(classes)
                for offset, content_class in zip(sorted(days), classes, strict=True):
                    day = start + timedelta(days=offset)
                    kind, title = self.rng.choice(POST_PLANS[content_class])
                    due_time = self.rng.choice(POST_TIMES)
                    template = templates.get(POST_TEMPLATE.get(kind, ""))
                    post = calendar_services.post_plan(
                        group=group,
                        actor=actor,
                        due_on=day,
                        due_time=due_time,
                        kind=kind,
                        content_class=content_class,
                        title=title,
                        template=template,
                    )
                    self.counts["posts"] += 1
                    if day >= self.today:
                        continue  # today's and later: still to do (the home page's due posts)
                    if self.rng.random() < 0.1:
                        calendar_services.post_skip(post=post, actor=actor, reason="与活动冲突，改期")
                        continue
                    if self.rng.random() < 0.9:
                        due = datetime.combine(day, due_time, tzinfo=self.tz)
                        calendar_services.post_done(
                            post=post,
                            actor=self.rng.choice(doers),
                            posted_text=title,
                            done_at=due + timedelta(minutes=self.rng.randint(0, 90)),
                        )
                        self.counts["posts_done"] += 1

    # --- bot traffic ---------------------------------------------------------------------

    def _sender(self, span: Span) -> dict:
        return {"member": span.member_id} if self.rng.random() < 0.7 else {"customer": span.external_id}

    def _at_in(self, span: Span, day_start: datetime) -> datetime | None:
        """A time on the day (08:00–23:00 local) when the member was in the group."""
        at = day_start + timedelta(seconds=self.rng.uniform(8 * 3600, 23 * 3600))
        if at >= self.now or at < span.joined_at or (span.left_at is not None and at >= span.left_at):
            return None
        return at

    def _ingest(self, service, rows: list[dict], row_model, **kwargs) -> int:
        created = 0
        for lo in range(0, len(rows), BATCH):
            chunk = [(i, row_model.model_validate(r)) for i, r in enumerate(rows[lo : lo + BATCH])]
            result = service(batch=ValidatedBatch(rows=chunk, errors=[], atomic=True), **kwargs)
            created += result.created
        return created

    def make_traffic(self) -> None:
        per_day = {row[0]: row[7] for row in DEMO_GROUPS}
        checkin_share = {row[0]: row[8] for row in DEMO_GROUPS}
        for code, group in self.groups.items():
            spans = self.spans[code]
            messages, checkins = [], []
            for back in range(self.days, -1, -1):  # the last ``days`` whole days and today so far
                day = self.today - timedelta(days=back)
                day_start = datetime.combine(day, dtime.min, tzinfo=self.tz)
                weekend = day.weekday() >= 5
                count = int(per_day[code] * (1.3 if weekend else 1.0) * self.rng.uniform(0.6, 1.4) * len(spans) / 300)
                for n in range(count):
                    span = self.rng.choice(spans)
                    at = self._at_in(span, day_start)
                    if at is None:
                        continue
                    messages.append(
                        {
                            **self._sender(span),
                            "external_id": f"{code}-{day.isoformat()}-{n}",
                            "sent_at": at.isoformat(),
                            "text": self.rng.choice(CHATTER),
                        }
                    )
                share = checkin_share[code]
                for span in self.rng.sample(spans, int(len(spans) * share * self.rng.uniform(0.7, 1.2))):
                    at = self._at_in(span, day_start)
                    if at is not None:
                        checkins.append({**self._sender(span), "at": at.isoformat()})
            messages += self._watched(code, spans)
            messages.sort(key=lambda m: m["sent_at"])
            self.counts["messages"] += self._ingest(
                ingest_services.messages_ingest_batch, messages, MessageRow, group=group
            )
            self.counts["checkins"] += self._ingest(
                ingest_services.checkins_ingest_batch, checkins, CheckInRow, group=group
            )

    def _watched(self, code: str, spans: list[Span]) -> list[dict]:
        """Messages with watched words in the last three days (see WATCHED)."""
        open_spans = [s for s in spans if s.left_at is None] or spans
        out = []
        texts = [t for t, where in WATCHED if where == "any" or code == CRISIS_GROUP]
        picks = texts if code == CRISIS_GROUP else self.rng.sample(texts, min(len(texts), self.rng.randint(1, 2)))
        if code == "demo-qq-digital":
            picks = [*picks, SPAM, SPAM, FALSE_POSITIVE]
        for n, text in enumerate(picks):
            span = self.rng.choice(open_spans)
            at = max(self.now - timedelta(hours=self.rng.uniform(1, 72)), span.joined_at + timedelta(minutes=1))
            out.append(
                {**self._sender(span), "external_id": f"{code}-watched-{n}", "sent_at": at.isoformat(), "text": text}
            )
        return out

    def make_activity(self) -> None:
        group = self.groups["demo-wx-checkin"]
        starts = self.now - timedelta(days=min(7, self.days - 1))
        activity, _created = ingest_services.activity_upsert(
            group=group,
            code="demo-21day-challenge",
            title="21天打卡挑战赛",
            starts_at=starts,
            ends_at=starts + timedelta(days=21),
        )
        candidates = [s for s in self.spans["demo-wx-checkin"] if s.left_at is None]
        chosen = self.rng.sample(candidates, len(candidates) // 4)
        rows = [
            {**self._sender(s), "at": max(starts, s.joined_at + timedelta(minutes=5)).isoformat()}
            for s in chosen
            if max(starts, s.joined_at) + timedelta(minutes=5) < self.now
        ]
        self.counts["signups"] += self._ingest(ingest_services.signups_ingest_batch, rows, SignupRow, activity=activity)

    # --- risk, alerts, health ----------------------------------------------------------------

    def make_risk(self) -> None:
        group = self.groups["demo-qq-digital"]
        actor = self.owner(group)
        in_group = [s for s in self.spans["demo-qq-digital"] if s.left_at is None]
        members = in_group[8:] if len(in_group) >= 10 else in_group  # past the group admins and KOCs
        spammer, abuser = (Customer.objects.get(pk=s.customer_id) for s in members[-2:])
        risk = risk_services.risk_action_record
        risk(group=group, customer=spammer, requested_step=RiskStep.WARN, reason=RiskReason.MARKETING,
             note="群内发微信号引流，首次警告", actor=actor)  # fmt: skip
        # a repeat within the window: asked for a warning, escalated to a mute
        risk(group=group, customer=spammer, requested_step=RiskStep.WARN, reason=RiskReason.MARKETING,
             note="再次发广告", actor=actor, mute_minutes=24 * 60)  # fmt: skip
        risk(group=group, customer=abuser, requested_step=RiskStep.REMOVE, reason=RiskReason.ABUSE,
             note="辱骂其他群友，多次劝阻无效", actor=actor)  # fmt: skip
        mom = self.groups["demo-wx-mom"]
        gossip = Customer.objects.get(pk=[s for s in self.spans["demo-wx-mom"] if s.left_at is None][-1].customer_id)
        risk(group=mom, customer=gossip, requested_step=RiskStep.WARN, reason=RiskReason.RUMOUR,
             note="转发未经证实的产品质量传言", actor=self.owner(mom))  # fmt: skip
        self.counts["risk_actions"] = 4

    def scan_and_handle(self) -> None:
        from communities.models import GroupMessage

        ids = list(
            GroupMessage.objects.filter(group__code__startswith=PREFIX).order_by("id").values_list("id", flat=True)
        )
        for lo in range(0, len(ids), BATCH):
            self.counts["alerts"] += alert_services.messages_scan(message_ids=ids[lo : lo + BATCH])
        manager = self.users["community"]
        false_positive = (
            Alert.objects.filter(message__text=FALSE_POSITIVE, status=AlertStatus.OPEN).order_by("pk").first()
        )
        if false_positive is not None:
            alert_services.alert_dismiss(alert=false_positive, reason="顾客说退款已到账，是好评不是投诉", actor=manager)
        spam = Alert.objects.filter(message__text=SPAM, status=AlertStatus.OPEN).order_by("pk").first()
        if spam is not None:
            alert_services.alert_acknowledge(alert=spam, actor=manager)

    def rollup(self) -> None:
        day_from = self.today - timedelta(days=self.days)
        ids = [g.pk for g in self.groups.values()]
        self.counts["health_rows"] = health_services.health_rollup(day_from, self.today, group_ids=ids)


def demo_communities_write(*, seed: int, members: int, days: int, users: dict | None = None) -> dict[str, int]:
    """Writes the demo (see the module's docstring); ``users`` maps ``admin`` and
    ``community`` to the accounts that play them (default: the demo accounts of those
    names), so a test can seed for its own accounts."""
    users = users or _users()
    missing = {"admin", "community"} - set(users)
    if missing:
        raise CommandError(f"The demo accounts {', '.join(sorted(missing))} are missing: run seed_demo first.")
    group_admin = users.get(GROUP_ADMIN_USER[0])
    seeder = _Seeder(seed=seed, members=members, days=days, users=users)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
        seeder.make_groups()
        seeder.make_members()
        seeder.make_staff(group_admin)
        templates = seeder.make_templates()
        seeder.make_rules()
        seeder.make_posts(templates, group_admin)
        seeder.make_traffic()
        seeder.make_activity()
        seeder.make_risk()
        seeder.scan_and_handle()
        seeder.rollup()
    return dict(seeder.counts)


class Command(BaseCommand):
    help = (
        "Adds 12 demo community groups with members, a group admin, approved SOP templates, keyword rules, "
        "two weeks of content calendar, a month of bot traffic, risk actions, alerts and health — through the "
        "communities services. A database with demo groups gets nothing new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=300, help="members a group (at most its capacity)")
        parser.add_argument("--days", type=int, default=30, help="whole days of messages and check-ins before today")
        parser.add_argument("--seed", type=int, default=12)
        parser.add_argument("--delete", action="store_true", help="delete the demo groups, templates and rules; stop")

    def handle(self, *args, members, days, seed, delete, **options):
        if delete:
            counts = demo_communities_delete()
            self.stdout.write("deleted " + ", ".join(f"{n} {label}" for label, n in counts.items()))
            return
        if members < 10 or not 3 <= days <= 90:
            raise CommandError("--members must be at least 10 and --days between 3 and 90.")
        started = time.monotonic()
        users = _users()
        group_admin = group_admin_ensure(users.get("admin"))
        self.stdout.write(f"demo group admin: {group_admin.get_username() if group_admin else 'not created'}")
        if demo_groups_exist():
            self.stdout.write(
                f"demo community groups: {CommunityGroup.objects.filter(code__startswith=PREFIX).count()} there already"
            )
            return
        counts = demo_communities_write(seed=seed, members=members, days=days)
        self.stdout.write(
            "demo communities: "
            + ", ".join(f"{label} {n}" for label, n in counts.items())
            + f", in {time.monotonic() - started:.1f} s"
        )
