"""A deterministic, realistic demo population (pure numpy, no database).

``demo_generate(spec)`` returns customers, orders and events as columns; the
``seed_demo`` command writes them. Everything random comes from one seeded
``numpy.random.Generator`` drawn in a fixed order, so the same ``seed`` and
``now`` give the same population, row for row.

The shape follows what an operations team sees in a Chinese consumer app:

- signups over ``days`` (two years) with growth, weekends and peaks around
  618, 11.11 and Chinese New Year; channels drift over time (douyin rises);
  ``referral`` signups point at an earlier signup, chosen by a heavy-tailed
  "inviter" propensity, so invite chains and a few super-inviters appear;
- buy-till-you-die purchasing: each customer has a purchase rate (gamma,
  heavy-tailed; some never buy) and a lifetime after which they go quiet
  (no orders, no logins); ``orders`` orders are spread over the customers'
  active windows, following the order seasonality (618, 11.11, the pre-New
  Year shopping festival, the holiday dip, evenings);
- long-tailed amounts (lognormal per customer and per order, a few VIPs),
  a few percent refunded or cancelled;
- events consistent with the orders: every order is preceded by a
  page_view → add_to_cart, plus abandoned carts, browsing, logins (one at
  signup), check-ins, shares, invites (one per referral, at the referee's
  signup, and the referee's ``invite_accepted`` just after it) and community messages.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

DAY = 86_400
HOUR = 3_600
# Behaviour follows Beijing time (no DST): the hour-of-day profile and the festival dates are local.
LOCAL_OFFSET = 8 * HOUR

# Chinese New Year (Spring Festival) dates.
CHINESE_NEW_YEAR = {
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
}

# Local hour-of-day activity (0h .. 23h): quiet nights, lunch, and the evening peak.
HOUR_PROFILE = np.array(
    [
        0.9,
        0.55,
        0.3,
        0.2,
        0.15,
        0.2,
        0.4,
        0.8,
        1.1,
        1.2,
        1.3,
        1.4,
        1.7,
        1.5,
        1.2,
        1.2,
        1.2,
        1.3,
        1.4,
        1.7,
        2.1,
        2.4,
        2.2,
        1.6,
    ]
)

# (channel, weight at the start of the window, weight at the end)
CHANNELS = [
    ("organic", 0.30, 0.24),
    ("app_store", 0.18, 0.15),
    ("wechat", 0.16, 0.15),
    ("douyin", 0.08, 0.20),
    ("referral", 0.12, 0.12),
    ("ads", 0.11, 0.07),
    ("xiaohongshu", 0.05, 0.07),
]
# Share of each channel's signups that never buy anything.
NEVER_BUY = {
    "organic": 0.28,
    "app_store": 0.25,
    "wechat": 0.30,
    "douyin": 0.42,
    "referral": 0.22,
    "ads": 0.45,
    "xiaohongshu": 0.35,
}

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# Zipf-like: the first surnames are by far the most common.
SURNAME_WEIGHTS = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9
GIVEN_FEMALE = list("芳娜敏静丽艳娟霞秀玲桂英萍红燕琳雪婷慧颖欣怡梓涵子萱佳琪雨诗语晨思悦可馨嘉宁月")
GIVEN_MALE = list("伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯俊峰建国志文博轩睿宇泽昊然晨子豪")
NICK_HEADS = [
    "小",
    "阿",
    "大",
    "快乐的",
    "安静的",
    "不吃香菜的",
    "爱喝奶茶的",
    "早睡的",
    "会飞的",
    "努力的",
    "橘子",
    "柠檬",
    "月亮",
    "星星",
    "云朵",
    "清风",
    "咸鱼",
    "锦鲤",
    "奶盖",
    "可乐",
]
NICK_TAILS = [
    "猫",
    "兔子",
    "熊",
    "鱼",
    "酱",
    "君",
    "同学",
    "宝",
    "仔",
    "小姐姐",
    "大叔",
    "汽水",
    "不加糖",
    "在路上",
    "很忙",
    "吃饱了",
    "Lucky",
    "Coco",
    "Momo",
    "Leo",
]
PHONE_PREFIXES = [
    str(p)
    for p in [
        *range(130, 140),
        145,
        147,
        *range(150, 154),
        *range(155, 160),
        166,
        *range(170, 179),
        *range(180, 190),
        191,
        198,
        199,
    ]
]
EMAIL_DOMAINS = [
    ("qq.com", 0.42),
    ("163.com", 0.2),
    ("126.com", 0.08),
    ("gmail.com", 0.07),
    ("outlook.com", 0.05),
    ("sina.com", 0.04),
    ("foxmail.com", 0.07),
    ("icloud.com", 0.07),
]
EMAIL_HANDLES = [
    "sunny",
    "lucky",
    "tiger",
    "panda",
    "coco",
    "momo",
    "leo",
    "amy",
    "jack",
    "lily",
    "kevin",
    "grace",
    "ivy",
    "tony",
    "cathy",
    "david",
    "echo",
    "frank",
    "helen",
    "jason",
    "moon",
    "star",
]
# (city, weight, timezone)
CITIES = [
    ("上海", 9.0, ""),
    ("北京", 8.5, ""),
    ("深圳", 7.0, ""),
    ("广州", 6.5, ""),
    ("杭州", 5.0, ""),
    ("成都", 5.0, ""),
    ("重庆", 4.0, ""),
    ("武汉", 3.8, ""),
    ("南京", 3.5, ""),
    ("西安", 3.0, ""),
    ("苏州", 3.0, ""),
    ("天津", 2.6, ""),
    ("长沙", 2.5, ""),
    ("郑州", 2.4, ""),
    ("东莞", 2.0, ""),
    ("青岛", 2.0, ""),
    ("沈阳", 1.6, ""),
    ("宁波", 1.6, ""),
    ("昆明", 1.5, ""),
    ("合肥", 1.5, ""),
    ("厦门", 1.4, ""),
    ("福州", 1.3, ""),
    ("济南", 1.3, ""),
    ("大连", 1.2, ""),
    ("哈尔滨", 1.1, ""),
    ("南宁", 1.0, ""),
    ("贵阳", 0.9, ""),
    ("石家庄", 0.9, ""),
    ("南昌", 0.9, ""),
    ("太原", 0.8, ""),
    ("乌鲁木齐", 0.5, ""),
    ("拉萨", 0.15, ""),
    ("香港", 0.5, "Asia/Hong_Kong"),
    ("台北", 0.3, "Asia/Taipei"),
    ("新加坡", 0.3, "Asia/Singapore"),
    ("东京", 0.2, "Asia/Tokyo"),
    ("伦敦", 0.15, "Europe/London"),
    ("纽约", 0.15, "America/New_York"),
    ("悉尼", 0.1, "Australia/Sydney"),
    ("", 3.0, ""),
]
DEFAULT_TIMEZONE = "Asia/Shanghai"
INTEREST_TAGS = ["美妆护肤", "数码3C", "母婴", "运动健身", "美食", "宠物", "家居", "服饰穿搭", "图书文具", "旅行"]
PLATFORMS = ["ios", "android", "mini_program", "web"]
PAGES = ["home", "search", "category", "activity", "product"]
SHARE_TARGETS = ["wechat_friend", "wechat_moments", "weibo", "xiaohongshu", "qq"]
MESSAGE_KINDS = ["group_chat", "group_chat", "customer_service"]
SKUS = 600

EVENT_TYPES = ["login", "page_view", "add_to_cart", "checkin", "share", "invite", "message", "invite_accepted"]
ORDER_STATUSES = ["paid", "refunded", "cancelled"]


@dataclass(frozen=True)
class DemoSpec:
    customers: int = 20_000
    orders: int = 200_000
    seed: int = 42
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    days: int = 730


@dataclass
class DemoCustomers:
    """One row per customer, in signup order (index = position)."""

    external_id: list[str]
    name: list[str]
    nickname: list[str]
    phone: list[str]
    email: list[str]
    gender: list[str]
    birthday: list[date | None]
    city: list[str]
    timezone: list[str]
    signup_at: np.ndarray  # datetime64[s], UTC
    channel: list[str]
    referrer: np.ndarray  # index of the referring customer, -1 for none
    consent: dict[str, np.ndarray]  # channel → bool array
    do_not_contact: np.ndarray
    tags: list[list[str]]

    def __len__(self) -> int:
        return len(self.external_id)


@dataclass
class DemoOrders:
    """One row per order, in time order."""

    external_id: list[str]
    customer: np.ndarray  # customer index
    amount_cents: np.ndarray
    status: list[str]
    occurred_at: np.ndarray  # datetime64[s], UTC

    def __len__(self) -> int:
        return len(self.external_id)


@dataclass
class DemoEvents:
    """One row per event, in time order; ``dedupe_key`` is ``demo:<n>`` (n zero-padded)."""

    customer: np.ndarray
    type: list[str]
    occurred_at: np.ndarray  # datetime64[s], UTC
    properties: list[str]  # JSON text
    dedupe_key: list[str]

    def __len__(self) -> int:
        return len(self.dedupe_key)


@dataclass
class Demo:
    spec: DemoSpec
    customers: DemoCustomers
    orders: DemoOrders
    events: DemoEvents


class _Clock:
    """Seasonal intensity on an hourly grid over the window, and sampling from it.

    Times are float seconds from the window start. ``cum(t)`` is the
    cumulative intensity; sampling inverts it, so a time drawn in ``[a, b]``
    follows the daily and hourly pattern inside that interval.
    """

    def __init__(self, start: np.datetime64, seconds: float, day_weight):
        hours = int(np.ceil(seconds / HOUR)) + 1
        local = start + np.arange(hours) * np.timedelta64(HOUR, "s") + np.timedelta64(LOCAL_OFFSET, "s")
        local_day = local.astype("datetime64[D]")
        hour_of_day = ((local - local_day).astype("timedelta64[h]")).astype(int)
        days = np.unique(local_day)
        weights = day_weight(days)[np.searchsorted(days, local_day)] * HOUR_PROFILE[hour_of_day]
        self.grid = np.arange(hours + 1, dtype=float) * HOUR
        self.cumulative = np.concatenate([[0.0], np.cumsum(weights)])

    def cum(self, t):
        return np.interp(t, self.grid, self.cumulative)

    def sample(self, rng: np.random.Generator, lo, hi):
        """One time in ``[lo, hi]`` per pair (arrays), following the intensity."""
        a, b = self.cum(lo), self.cum(hi)
        return np.clip(np.interp(a + rng.random(np.shape(a)) * (b - a), self.cumulative, self.grid), lo, hi)


def _bump(days: np.ndarray, center: date, amp: float, before: float, after: float) -> np.ndarray:
    """A festival: a ramp of ``before`` days up to ``center`` and a sharper fall over ``after`` days."""
    offset = (days - np.datetime64(center, "D")).astype(float)
    width = np.where(offset < 0, before, after)
    return amp * np.exp(-0.5 * (offset / width) ** 2)


def _festivals(days: np.ndarray) -> list[tuple[int, date | None]]:
    years = range(int(str(days.min())[:4]) - 1, int(str(days.max())[:4]) + 2)
    return [(y, CHINESE_NEW_YEAR.get(y)) for y in years]


def _weekend(days: np.ndarray) -> np.ndarray:
    return ((days.astype(int) + 3) % 7) >= 5  # 1970-01-01 was a Thursday


def _signup_day_weight(days: np.ndarray) -> np.ndarray:
    growth = np.linspace(0.55, 1.45, len(days))
    w = np.ones(len(days)) + np.where(_weekend(days), 0.12, 0.0)
    for year, cny in _festivals(days):
        w += _bump(days, date(year, 6, 18), 1.1, 7, 2) + _bump(days, date(year, 11, 11), 1.6, 8, 2)
        if cny:
            # New phones, red-packet campaigns and family invites around the holiday.
            w += _bump(days, cny, 0.9, 6, 6)
    return w * growth


def _order_day_weight(days: np.ndarray) -> np.ndarray:
    w = np.ones(len(days)) + np.where(_weekend(days), 0.18, 0.0)
    for year, cny in _festivals(days):
        w += _bump(days, date(year, 6, 18), 1.6, 8, 1.5) + _bump(days, date(year, 6, 18), 2.0, 0.6, 0.6)
        w += _bump(days, date(year, 11, 11), 2.2, 10, 1.5) + _bump(days, date(year, 11, 11), 4.0, 0.6, 0.6)
        w += _bump(days, date(year, 12, 12), 0.6, 3, 1)
        if cny:
            # 年货节 two weeks before, then the holiday dip (couriers stop).
            w += _bump(days, cny - timedelta(days=14), 0.8, 6, 4)
            w *= 1.0 - _bump(days, cny + timedelta(days=3), 0.5, 3, 4)
    return w


def _allocate(rng: np.random.Generator, total: int, weights: np.ndarray) -> np.ndarray:
    """Splits ``total`` over the customers in proportion to ``weights`` (exactly ``total``)."""
    weights = np.clip(weights, 0, None)
    if total <= 0 or len(weights) == 0:
        return np.zeros(len(weights), dtype=np.int64)
    s = weights.sum()
    p = weights / s if s > 0 else np.full(len(weights), 1.0 / len(weights))
    return rng.multinomial(total, p)


def _choice(rng: np.random.Generator, items: list, size: int, weights=None) -> np.ndarray:
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return rng.choice(len(items), size=size, p=p)


def _prefix_choice(rng: np.random.Generator, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each row ``i``, an index ``j < i`` drawn in proportion to ``weights[j]``."""
    cum = np.cumsum(weights)
    target = rng.random(len(rows)) * cum[rows - 1]
    return np.minimum(np.searchsorted(cum, target, side="right"), rows - 1)


def _customers(
    rng: np.random.Generator, spec: DemoSpec, clock: _Clock, start: np.datetime64, window: float
) -> tuple[DemoCustomers, dict]:
    n = spec.customers
    signup = np.sort(clock.sample(rng, np.zeros(n), np.full(n, window)))

    # Channels drift over the window (douyin grows, paid ads shrink).
    frac = signup / window
    w0 = np.array([c[1] for c in CHANNELS])
    w1 = np.array([c[2] for c in CHANNELS])
    w = w0[None, :] + (w1 - w0)[None, :] * frac[:, None]
    cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    channel_idx = np.minimum((cum < rng.random(n)[:, None]).sum(axis=1), len(CHANNELS) - 1)
    referral = [c[0] for c in CHANNELS].index("referral")
    if n:
        channel_idx[0] = 0  # the first customer has nobody to be referred by
    channel = [CHANNELS[i][0] for i in channel_idx]

    # Invite chains: a heavy-tailed propensity to invite, referrers always signed up earlier.
    inviter = rng.pareto(1.8, n) + 0.05
    referrer = np.full(n, -1, dtype=np.int64)
    referred_rows = np.flatnonzero(channel_idx == referral)
    if len(referred_rows):
        referrer[referred_rows] = _prefix_choice(rng, referred_rows, inviter)

    gender_idx = _choice(rng, ["female", "male", "unknown", "other"], n, [0.52, 0.40, 0.07, 0.01])
    gender = [["female", "male", "unknown", "other"][g] for g in gender_idx]
    surname = _choice(rng, SURNAMES, n, SURNAME_WEIGHTS)
    two_chars = rng.random(n) < 0.62
    g1f, g2f = rng.integers(0, len(GIVEN_FEMALE), (2, n))
    g1m, g2m = rng.integers(0, len(GIVEN_MALE), (2, n))
    female_name = rng.random(n) < 0.5  # for unknown/other genders
    names = []
    for i in range(n):
        chars = GIVEN_FEMALE if gender_idx[i] == 0 or (gender_idx[i] >= 2 and female_name[i]) else GIVEN_MALE
        a, b = (g1f[i], g2f[i]) if chars is GIVEN_FEMALE else (g1m[i], g2m[i])
        names.append(SURNAMES[surname[i]] + chars[a] + (chars[b] if two_chars[i] else ""))
    nick_head = rng.integers(0, len(NICK_HEADS), n)
    nick_tail = rng.integers(0, len(NICK_TAILS), n)
    nick_num = rng.integers(0, 10_000, n)
    nick_style = rng.random(n)
    nicknames = []
    for i in range(n):
        if nick_style[i] < 0.15:
            nicknames.append("小" + names[i][-1])
        elif nick_style[i] < 0.85:
            nicknames.append(NICK_HEADS[nick_head[i]] + NICK_TAILS[nick_tail[i]])
        else:
            nicknames.append(f"{NICK_TAILS[nick_tail[i]]}{nick_num[i]}")

    # Phones: a mobile prefix and a unique 8-digit tail.
    prefix = rng.integers(0, len(PHONE_PREFIXES), n)
    tail = rng.choice(100_000_000, size=n, replace=False)
    phones = [f"{PHONE_PREFIXES[prefix[i]]}{tail[i]:08d}" for i in range(n)]
    has_phone = rng.random(n) < 0.96
    phones = [p if has_phone[i] else "" for i, p in enumerate(phones)]

    has_email = rng.random(n) < 0.68
    domain = _choice(rng, EMAIL_DOMAINS, n, [d[1] for d in EMAIL_DOMAINS])
    qq = rng.integers(10_000, 3_999_999_999, n)
    handle = rng.integers(0, len(EMAIL_HANDLES), n)
    emails = []
    for i in range(n):
        if not has_email[i]:
            emails.append("")
            continue
        d = EMAIL_DOMAINS[domain[i]][0]
        local = str(qq[i]) if d in {"qq.com", "foxmail.com"} and qq[i] % 3 else f"{EMAIL_HANDLES[handle[i]]}{i + 1}"
        emails.append(f"{local}@{d}")

    today = (np.datetime64(spec.now.replace(tzinfo=None), "s") + np.timedelta64(LOCAL_OFFSET, "s")).astype(
        "datetime64[D]"
    )
    age_days = (np.clip(rng.normal(30, 8.5, n), 16, 72) * 365.25).astype(np.int64)
    birthdays = (today - age_days.astype("timedelta64[D]")).tolist()
    has_birthday = rng.random(n) < 0.82
    birthday = [b if has_birthday[i] else None for i, b in enumerate(birthdays)]
    ages = age_days / 365.25

    city_idx = _choice(rng, CITIES, n, [c[1] for c in CITIES])
    city = [CITIES[i][0] for i in city_idx]
    timezone = [CITIES[i][2] or DEFAULT_TIMEZONE for i in city_idx]
    # A few customers on the mainland set another zone on their device.
    odd_zone = rng.random(n) < 0.004
    timezone = ["Asia/Urumqi" if odd_zone[i] and city[i] == "乌鲁木齐" else tz for i, tz in enumerate(timezone)]

    is_wechat = np.array([c in {"wechat", "referral"} for c in channel])
    consent = {
        "push": rng.random(n) < 0.62,
        "sms": rng.random(n) < 0.45,
        "email": (rng.random(n) < 0.35) & has_email,
        "wechat": rng.random(n) < np.where(is_wechat, 0.85, 0.45),
        "in_app": rng.random(n) < 0.88,
    }
    do_not_contact = rng.random(n) < 0.015

    # Interest tags (0-3 a customer) and persona tags.
    interests = rng.random((n, len(INTEREST_TAGS))) < 0.09
    student = (ages < 23) & (rng.random(n) < 0.6)
    parent = (gender_idx == 0) & (ages > 26) & (ages < 42) & (rng.random(n) < 0.25)
    tags = []
    for i in range(n):
        row = [INTEREST_TAGS[k] for k in np.flatnonzero(interests[i])]
        if student[i]:
            row.append("学生党")
        if parent[i]:
            row.append("宝妈")
        tags.append(row)

    customers = DemoCustomers(
        external_id=[f"demo-c{i + 1:06d}" for i in range(n)],
        name=names,
        nickname=nicknames,
        phone=phones,
        email=emails,
        gender=gender,
        birthday=birthday,
        city=city,
        timezone=timezone,
        signup_at=start + np.floor(signup).astype("timedelta64[s]"),
        channel=channel,
        referrer=referrer,
        consent=consent,
        do_not_contact=do_not_contact,
        tags=tags,
    )
    traits = {"channel_idx": channel_idx, "signup": signup}
    return customers, traits


def demo_generate(spec: DemoSpec) -> Demo:
    rng = np.random.default_rng(spec.seed)
    now = np.datetime64(spec.now.astimezone(UTC).replace(tzinfo=None), "s")
    start = now - np.timedelta64(spec.days * DAY, "s")
    window = float(spec.days * DAY)
    signup_clock = _Clock(start, window, _signup_day_weight)
    order_clock = _Clock(start, window, _order_day_weight)

    customers, traits = _customers(rng, spec, signup_clock, start, window)
    n = len(customers)
    signup = traits["signup"]
    channel_names = [c[0] for c in CHANNELS]

    # Lifetimes: a churn hazard per customer; a quarter look around and leave within days.
    dropout_days = rng.gamma(2.0, 150.0, n)
    lifetime = rng.exponential(dropout_days) * DAY
    tourist = rng.random(n) < 0.2
    lifetime = np.where(tourist, rng.exponential(4.0, n) * DAY, lifetime)
    active_end = np.minimum(window, signup + lifetime)

    # Purchase rates: heavy-tailed, zero for those who never buy.
    never = rng.random(n) < np.array([NEVER_BUY[channel_names[c]] for c in traits["channel_idx"]])
    rate = rng.gamma(0.7, 1.0, n)
    rate = np.minimum(rate, np.quantile(rate, 0.999) if n else 0) * ~never
    first_possible = signup + 600
    order_weight = rate * np.clip(order_clock.cum(active_end) - order_clock.cum(first_possible), 0, None)
    per_customer = _allocate(rng, spec.orders, order_weight)

    order_customer = np.repeat(np.arange(n), per_customer)
    order_t = order_clock.sample(rng, first_possible[order_customer], active_end[order_customer])
    # Amounts: lognormal around a per-customer basket size; 1% VIPs with much bigger baskets.
    basket = rng.normal(np.log(95), 0.55, n) + np.where(rng.random(n) < 0.01, 1.4, 0.0)
    amount = np.exp(basket[order_customer] + rng.normal(0, 0.65, len(order_customer)))
    local_day = (start + (order_t + LOCAL_OFFSET).astype("timedelta64[s]")).astype("datetime64[D]")
    month_start = local_day.astype("datetime64[M]")
    month = month_start.astype(int) % 12 + 1
    day_of_month = (local_day - month_start.astype("datetime64[D]")).astype(int) + 1
    festival = ((month == 6) & (day_of_month == 18)) | ((month == 11) & (day_of_month == 11))
    amount *= np.where(festival, 1.3, 1.0)
    # Prices end in .00, .90 or .99 as in a real shop.
    ending = np.array([0, 10, 1])[_choice(rng, [0, 1, 2], len(amount), [0.5, 0.3, 0.2])]
    cents = np.clip(np.round(amount) * 100 - ending, 99, 9_999_900).astype(np.int64)
    refund_p = np.where(cents > 50_000, 0.06, 0.035)
    u = rng.random(len(cents))
    status_idx = np.where(u < refund_p, 1, np.where(u < refund_p + 0.02, 2, 0))

    o_order = np.argsort(order_t, kind="stable")
    order_customer, order_t, cents, status_idx = (
        order_customer[o_order],
        order_t[o_order],
        cents[o_order],
        status_idx[o_order],
    )
    orders = DemoOrders(
        external_id=[f"demo-o{i + 1:07d}" for i in range(len(order_t))],
        customer=order_customer,
        amount_cents=cents,
        status=[ORDER_STATUSES[s] for s in status_idx],
        occurred_at=start + np.floor(order_t).astype("timedelta64[s]"),
    )

    events = _events(
        rng, spec, customers, order_clock, start, window, signup, active_end, rate, order_customer, order_t
    )
    _persona_tags(customers, per_customer, cents, order_customer, status_idx, basket)
    return Demo(spec=spec, customers=customers, orders=orders, events=events)


def _events(
    rng, spec, customers, clock, start, window, signup, active_end, rate, order_customer, order_t
) -> DemoEvents:
    n = len(customers)
    N = len(order_t)
    sku_weights = 1.0 / np.arange(1, SKUS + 1) ** 1.1
    platform = _choice(rng, PLATFORMS, n, [0.35, 0.4, 0.2, 0.05])
    platform[np.array([c == "app_store" for c in customers.channel], dtype=bool)] = 0
    platform[np.array([c == "wechat" for c in customers.channel], dtype=bool)] = 2
    engaged = rate + 0.15
    span = np.clip(active_end - signup, 0, None)

    cust_parts, type_parts, t_parts, prop_parts = [], [], [], []

    def add(kind: str, cust: np.ndarray, t: np.ndarray, props: list[str]) -> None:
        cust_parts.append(cust)
        type_parts.append(np.full(len(cust), EVENT_TYPES.index(kind), dtype=np.int8))
        t_parts.append(t)
        prop_parts.extend(props)

    def budget(total: int, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        counts = _allocate(rng, int(total), weights)
        cust = np.repeat(np.arange(n), counts)
        return cust, clock.sample(rng, lo[cust], hi[cust])

    def sku_props(skus: np.ndarray, extra: str = "") -> list[str]:
        return [f'{{"sku": "SKU-{s:05d}"{extra}}}' for s in skus]

    # The funnel behind every order: page_view → add_to_cart → order.
    sku = _choice(rng, list(range(SKUS)), N, sku_weights) + 1
    cart_t = np.maximum(signup[order_customer], order_t - rng.exponential(20 * 60, N) - 5)
    view_t = np.maximum(signup[order_customer], cart_t - rng.exponential(4 * 60, N) - 5)
    add("page_view", order_customer, view_t, sku_props(sku, ', "page": "product"'))
    qty = 1 + rng.poisson(0.3, N)
    add(
        "add_to_cart",
        order_customer,
        cart_t,
        [f'{{"sku": "SKU-{s:05d}", "qty": {q}}}' for s, q in zip(sku, qty, strict=True)],
    )

    # Abandoned carts (a product view first) and browsing that goes nowhere.
    cust, t = budget(0.1 * N, engaged * span, signup, active_end)
    sku = _choice(rng, list(range(SKUS)), len(cust), sku_weights) + 1
    add("add_to_cart", cust, t, [f'{{"sku": "SKU-{s:05d}", "qty": 1}}' for s in sku])
    add(
        "page_view",
        cust,
        np.maximum(signup[cust], t - rng.exponential(3 * 60, len(cust)) - 5),
        sku_props(sku, ', "page": "product"'),
    )
    cust, t = budget(0.1 * N, engaged * span, signup, active_end)
    page = _choice(rng, PAGES, len(cust), [0.35, 0.2, 0.15, 0.1, 0.2])
    sku = _choice(rng, list(range(SKUS)), len(cust), sku_weights) + 1
    add(
        "page_view",
        cust,
        t,
        [
            f'{{"page": "{PAGES[p]}", "sku": "SKU-{s:05d}"}}' if p == 4 else f'{{"page": "{PAGES[p]}"}}'
            for p, s in zip(page, sku, strict=True)
        ],
    )

    # Logins: one at signup, then while active (a quiet customer stops logging in).
    everyone = np.arange(n)
    add("login", everyone, signup + 1, [f'{{"platform": "{PLATFORMS[p]}", "first": true}}' for p in platform])
    cust, t = budget(0.12 * N, engaged * span, signup, active_end)
    add("login", cust, t, [f'{{"platform": "{PLATFORMS[p]}"}}' for p in platform[cust]])

    # Check-ins by the engaged third; shares; community messages.
    checkers = rng.random(n) < 0.35
    cust, t = budget(0.07 * N, engaged * span * checkers, signup, active_end)
    add("checkin", cust, t, [f'{{"platform": "{PLATFORMS[p]}"}}' for p in platform[cust]])
    cust, t = budget(0.02 * N, engaged * span, signup, active_end)
    target = _choice(rng, SHARE_TARGETS, len(cust), [0.4, 0.3, 0.1, 0.12, 0.08])
    sku = _choice(rng, list(range(SKUS)), len(cust), sku_weights) + 1
    add(
        "share",
        cust,
        t,
        [f'{{"target": "{SHARE_TARGETS[g]}", "sku": "SKU-{s:05d}"}}' for g, s in zip(target, sku, strict=True)],
    )
    members = rng.random(n) < 0.15
    cust, t = budget(0.04 * N, engaged * span * members, signup, active_end)
    kind = _choice(rng, MESSAGE_KINDS, len(cust))
    add("message", cust, t, [f'{{"kind": "{MESSAGE_KINDS[k]}"}}' for k in kind])

    # Invites: the referrer shares a link shortly before the referee signs up.
    referee = np.flatnonzero(customers.referrer >= 0)
    referrer = customers.referrer[referee]
    gap = np.minimum(3 * DAY, signup[referee] - signup[referrer])
    t = signup[referee] - rng.random(len(referee)) * gap
    add("invite", referrer, t, [f'{{"invitee": "{customers.external_id[i]}"}}' for i in referee])
    # …and accepts it on signing up: what the invite rule pays and the invite leaderboard counts.
    t = signup[referee] + rng.random(len(referee)) * np.minimum(HOUR, window - signup[referee])
    add("invite_accepted", referee, t, [f'{{"referrer": "{customers.external_id[i]}"}}' for i in referrer])

    cust = np.concatenate(cust_parts)
    kinds = np.concatenate(type_parts)
    t = np.clip(np.concatenate(t_parts), 0, window)
    order = np.argsort(t, kind="stable")
    props = [prop_parts[i] for i in order]
    return DemoEvents(
        customer=cust[order],
        type=[EVENT_TYPES[k] for k in kinds[order]],
        occurred_at=start + np.floor(t[order]).astype("timedelta64[s]"),
        properties=props,
        dedupe_key=[f"demo:{i + 1:07d}" for i in range(len(order))],  # zero-padded: index inserts append
    )


def _persona_tags(customers: DemoCustomers, per_customer, cents, order_customer, status_idx, basket) -> None:
    """Tags that follow behaviour: big spenders, bargain hunters, super-inviters."""
    n = len(customers)
    paid = status_idx == 0
    spend = np.bincount(order_customer[paid], weights=cents[paid], minlength=n)
    threshold = np.quantile(spend[spend > 0], 0.95) if (spend > 0).any() else np.inf
    invites = np.bincount(customers.referrer[customers.referrer >= 0], minlength=n)
    low_basket = basket < np.log(95) - 0.7
    for i in range(n):
        if spend[i] >= threshold:
            customers.tags[i].append("高消费")
        if low_basket[i] and per_customer[i] >= 3:
            customers.tags[i].append("价格敏感")
        if invites[i] >= 3:
            customers.tags[i].append("KOC")
