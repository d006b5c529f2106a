"""Messages per second through keyword normalisation and matching with 1,000 rules
(900 keywords, 100 RE2 patterns), on one core, as one JSON line.

    .venv/bin/python bench/keywords.py [--messages 200000] [--rules 1000]

The messages are synthetic group chat: Chinese and English lines of 10–80 characters,
some in traditional characters or full-width forms, some with separators inserted
into a watched word, about 2% carrying a hit. The run also measures the same messages
against 10 rules, so the line shows what the rule count costs. No database, no Django
settings: this is the matching engine alone (``communities.keywords``)."""

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from communities.keywords.matcher import Matcher, RuleSpec  # noqa: E402
from communities.keywords.normalise import _table, normalise  # noqa: E402

SYLLABLES = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
    "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
    "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处理世车"
)
WORDS_EN = ["the", "app", "order", "delivery", "coupon", "points", "group", "check", "in", "today", "great", "thanks",
            "when", "how", "price", "share", "join", "event"]  # fmt: skip
KEYWORDS_ZH = ["退款", "投诉", "骗子", "维权", "曝光", "诈骗", "差评", "举报", "假货", "跑路", "封号", "泄露"]


def _rules(n_keywords: int, n_patterns: int, rng: random.Random) -> list[RuleSpec]:
    rules = [RuleSpec(i, "keyword", KEYWORDS_ZH[i]) for i in range(min(n_keywords, len(KEYWORDS_ZH)))]
    while len(rules) < n_keywords:  # the rest: made-up two- to four-character words and English terms
        if rng.random() < 0.7:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        else:
            word = f"{rng.choice(WORDS_EN)}{rng.choice(['scam', 'fraud', 'leak', 'ban'])}{len(rules)}"
        rules.append(RuleSpec(len(rules), "keyword", word))
    patterns = [r"1[3-9]\d{9}", r"(加|\+)(v|微|vx|wx)[a-z0-9_]{5,}", r"https?t\.me[a-z0-9]+", r"\d{6,}元"]
    for i in range(n_patterns):
        base = patterns[i % len(patterns)]
        rules.append(RuleSpec(n_keywords + i, "pattern", base if i < len(patterns) else f"{base}x{i}"))
    return rules


def _messages(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            text = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(10, 60)))
        else:
            text = " ".join(rng.choice(WORDS_EN) for _ in range(rng.randint(3, 14)))
        roll = rng.random()
        if roll < 0.01:
            text += " 退 款 "  # a separator dodge
        elif roll < 0.015:
            text += "ＶＸ：abc12345"  # full-width, a pattern
        elif roll < 0.02:
            text = "這個" + text + "詐騙"  # traditional
        out.append(text)
    return out


def _rate(matcher: Matcher, messages: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = 0
    for text in messages:
        hits += len(matcher.match(text))
    return len(messages) / (time.perf_counter() - start), hits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rng = random.Random(12)
    messages = _messages(args.messages, rng)
    build_start = time.perf_counter()
    _table()
    table_seconds = time.perf_counter() - build_start
    n_patterns = args.rules // 10
    rules = _rules(args.rules - n_patterns, n_patterns, rng)
    build_start = time.perf_counter()
    matcher = Matcher.build(rules)
    build_seconds = time.perf_counter() - build_start
    small = Matcher.build(_rules(9, 1, random.Random(12)))
    _rate(matcher, messages[:2000])  # warm
    rate, hits = _rate(matcher, messages)
    rate_small, _ = _rate(small, messages)
    start = time.perf_counter()
    for text in messages:
        normalise(text)
    normalise_rate = len(messages) / (time.perf_counter() - start)
    mean_chars = sum(map(len, messages)) / len(messages)
    print(
        json.dumps(
            {
                "bench": "keywords",
                "messages": len(messages),
                "mean_chars": round(mean_chars, 1),
                "rules": len(rules),
                "keywords": len(rules) - n_patterns,
                "patterns": n_patterns,
                "messages_per_s": round(rate),
                "messages_per_s_10_rules": round(rate_small),
                "normalise_only_per_s": round(normalise_rate),
                "hits": hits,
                "matcher_build_s": round(build_seconds, 3),
                "normalise_table_build_s": round(table_seconds, 3),
                "target_messages_per_s": 50_000,
                "cores": 1,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
