"""One matcher for all active rules: keywords in a pyahocorasick automaton, patterns
in one RE2 set (linear time in the text whatever the pattern). Build it once per rule
change (``Matcher.build``) and reuse it for every message."""

from dataclasses import dataclass

import ahocorasick
import re2
from django.utils.translation import gettext as _

from .normalise import normalise

#: a pattern longer than this is refused: RE2 compiles it into a program whose size
#: grows with it, and a watched pattern of more is a list of keywords in disguise
MAX_PATTERN_LENGTH = 500
#: RE2's compiled-program memory per pattern (bytes); a pattern needing more is refused
PATTERN_MAX_MEMORY = 1 << 20
#: the memory the set of every pattern may take (each pattern counts for its own share,
#: up to this); a set RE2 still cannot build is not used and the patterns run one by one
SET_MAX_MEMORY = 256 << 20


@dataclass(frozen=True)
class RuleSpec:
    id: int
    kind: str  # "keyword" or "pattern"
    text: str


@dataclass(frozen=True)
class Hit:
    rule_id: int
    matched: str  # the normalised text that matched


class PatternError(ValueError):
    """An admin-entered pattern RE2 refuses, with the reason in the operator's words."""


def _options(max_mem: int = PATTERN_MAX_MEMORY) -> re2.Options:
    """RE2's options. Case-insensitive: the text a pattern sees is case-folded
    (``normalise``), so an upper-case letter in a pattern (``VIP\\d+``) would otherwise
    never match anything."""
    options = re2.Options()
    options.max_mem = max_mem
    options.log_errors = False
    options.case_sensitive = False
    return options


def _set_build(patterns: list[str], max_mem: int):
    """RE2's one-pass set of ``patterns``, or None when RE2 cannot build it in ``max_mem``."""
    pattern_set = re2.Set.SearchSet(_options(max_mem))
    for text in patterns:
        pattern_set.Add(text)
    try:
        pattern_set.Compile()
    except re2.error:
        return None
    return pattern_set


def keyword_problem(text: str) -> str | None:
    """Why a keyword cannot be watched (None when it can)."""
    if not normalise(text):
        return _("the keyword is only spaces or punctuation, which are removed before matching")
    return None


def pattern_compile(text: str):
    """Compiles an RE2 pattern the way the matcher runs it, or raises PatternError
    saying why: bad syntax, a feature RE2 does not have (back-references, look-around),
    or too large a program."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(_("a pattern is at most %(n)s characters") % {"n": MAX_PATTERN_LENGTH})
    if not text.strip():
        raise PatternError(_("the pattern is empty"))
    try:
        compiled = re2.compile(text, options=_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(_("RE2 cannot compile it: %(reason)s") % {"reason": reason}) from None
    if compiled.search("") is not None:
        raise PatternError(_("the pattern matches empty text, so it would match every message"))
    if _set_build([text], PATTERN_MAX_MEMORY) is None:
        # It compiles alone, but the set every pattern is matched in needs more than the limit.
        raise PatternError(_("the pattern is too large to match in linear time (try fewer or smaller repetitions)"))
    return compiled


class Matcher:
    def __init__(self, keywords: dict[str, list[int]], patterns: list[tuple[int, object]]):
        self._automaton = None
        if keywords:
            automaton = ahocorasick.Automaton()
            for word, rule_ids in keywords.items():
                automaton.add_word(word, (word, tuple(rule_ids)))
            automaton.make_automaton()
            self._automaton = automaton
        self._patterns = patterns
        self._set = None
        if patterns:
            # A set RE2 cannot build (rows written around the save's check, or many large
            # patterns) must not stop every scan: the patterns are then searched one by one.
            budget = min(PATTERN_MAX_MEMORY * len(patterns), SET_MAX_MEMORY)
            self._set = _set_build([compiled.pattern for _rule_id, compiled in patterns], budget)

    @classmethod
    def build(cls, rules: list[RuleSpec]) -> "Matcher":
        """Keywords are normalised like the text; a pattern that does not compile is
        skipped here (it was refused when saved; this guards rows written around that)."""
        keywords: dict[str, list[int]] = {}
        patterns: list[tuple[int, object]] = []
        for rule in rules:
            if rule.kind == "keyword":
                word = normalise(rule.text)
                if word:
                    keywords.setdefault(word, []).append(rule.id)
            else:
                try:
                    patterns.append((rule.id, pattern_compile(rule.text)))
                except PatternError:
                    continue
        return cls(keywords, patterns)

    def match_normalised(self, text: str) -> list[Hit]:
        """Hits in text already normalised, at most one per rule, in rule order."""
        hits: dict[int, str] = {}
        if self._automaton is not None:
            for _end, (word, rule_ids) in self._automaton.iter(text):
                for rule_id in rule_ids:
                    hits.setdefault(rule_id, word)
        if self._patterns:
            matched = (
                self._set.Match(text) or ()
                if self._set is not None
                else [i for i, (_rule_id, compiled) in enumerate(self._patterns) if compiled.search(text)]
            )
            for index in matched:
                rule_id, compiled = self._patterns[index]
                if rule_id not in hits:
                    found = compiled.search(text)
                    hits[rule_id] = found.group(0) if found else ""
        return [Hit(rule_id, matched[:200]) for rule_id, matched in sorted(hits.items())]

    def match(self, text: str) -> list[Hit]:
        return self.match_normalised(normalise(text))
