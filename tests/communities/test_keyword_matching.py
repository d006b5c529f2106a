"""The keyword engine alone: normalisation folds what people vary to dodge a filter,
keywords and RE2 patterns match in one pass, and a pattern RE2 cannot run safely is
refused with its reason."""

import pytest
from django.utils import translation

from communities.keywords.matcher import Hit, Matcher, PatternError, RuleSpec, keyword_problem, pattern_compile
from communities.keywords.normalise import normalise


@pytest.fixture(autouse=True)
def _english():
    """The refusals are the operator's words, translated; these tests read them in English."""
    with translation.override("en"):
        yield


@pytest.mark.parametrize("dodged", ["退款", "退 款", "退-款", "退.款", "退\u200b款", "退　款", "退_款", "退～款"])
def test_separators_inserted_into_a_word_are_removed(dodged):
    assert normalise(dodged) == "退款"


def test_full_width_case_and_traditional_characters_fold():
    assert normalise("ＲＥＦＵＮＤ") == "refund"
    assert normalise("發票詐騙") == "发票诈骗"
    assert normalise("１２３") == "123"


def test_keywords_match_in_any_written_form_once_per_rule():
    matcher = Matcher.build([RuleSpec(1, "keyword", "退款"), RuleSpec(2, "keyword", "Refund")])
    assert matcher.match("我要退 款，退-款！") == [Hit(1, "退款")]
    assert matcher.match("ＲＥ-FUND now") == [Hit(2, "refund")]
    assert matcher.match("天气不错") == []


def test_one_keyword_shared_by_two_rules_hits_both():
    matcher = Matcher.build([RuleSpec(1, "keyword", "骗子"), RuleSpec(2, "keyword", "骗 子")])
    assert matcher.match("他是骗子") == [Hit(1, "骗子"), Hit(2, "骗子")]


def test_patterns_match_the_normalised_text():
    matcher = Matcher.build([RuleSpec(7, "pattern", r"1[3-9]\d{9}"), RuleSpec(8, "keyword", "投诉")])
    assert matcher.match("加我 138 0000 0000 投诉") == [Hit(7, "13800000000"), Hit(8, "投诉")]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "RE2 cannot compile it"),  # back-reference
        (r"(?=x)y", "RE2 cannot compile it"),  # look-ahead
        ("(unclosed", "RE2 cannot compile it"),
        ("a*", "matches empty text"),
        ("", "empty"),
        ("x" * 501, "at most 500"),
    ],
)
def test_a_pattern_re2_cannot_run_safely_is_refused_with_the_reason(pattern, reason):
    with pytest.raises(PatternError) as exc:
        pattern_compile(pattern)
    assert reason in str(exc.value)


def test_a_catastrophic_backtracking_pattern_runs_in_linear_time():
    compiled = pattern_compile(r"(a+)+$")
    assert compiled.search("a" * 50_000 + "b") is None  # a backtracking engine would not return


def test_a_keyword_of_only_separators_is_refused_and_a_bad_stored_pattern_is_skipped():
    assert "only spaces or punctuation" in keyword_problem(" - . ")
    assert keyword_problem("退款") is None
    matcher = Matcher.build([RuleSpec(1, "pattern", "(bad"), RuleSpec(2, "keyword", "退款")])
    assert matcher.match("退款 (bad") == [Hit(2, "退款")]
