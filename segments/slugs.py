"""Readable slugs for segments, the same from every write path (the builder, the API,
the admin, imports): Chinese written in pinyin ("高价值 VIP" → ``gao-jia-zhi-vip``), the
rest as Django's ``slugify`` has it, and a numeric suffix when the slug is taken."""

import re
from collections.abc import Callable

from django.utils.text import slugify
from django.utils.translation import gettext as _
from pypinyin import Style, lazy_pinyin

from core.errors import ApplicationError

from .models import Segment

MAX_LENGTH = Segment._meta.get_field("slug").max_length
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def slug_from_text(text: str) -> str:
    """``"高价值 VIP"`` → ``"gao-jia-zhi-vip"``; ``""`` when nothing readable is left."""
    text = (text or "").strip()
    if _HAN.search(text):
        # Each Han character becomes its syllable; other runs pass through as they are.
        text = " ".join(lazy_pinyin(text, style=Style.NORMAL, errors="default"))
    return slugify(text, allow_unicode=False).strip("-_")[:MAX_LENGTH].strip("-_")


def slug_unique(base: str, taken: Callable[[str], bool], *, fallback: str = "segment") -> str:
    """``base``, or ``base-2``, ``base-3``… — the first one ``taken`` says is free,
    kept within the column's length."""
    base = base or fallback
    if not taken(base):
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = f"{base[: MAX_LENGTH - len(suffix)].rstrip('-_')}{suffix}"
        if not taken(candidate):
            return candidate
        n += 1


def segment_slug_new(name: str) -> str:
    """A free slug for a new segment named ``name``."""
    return slug_unique(slug_from_text(name), lambda s: Segment.objects.filter(slug=s).exists())


def slug_is_valid(slug: str) -> bool:
    """What an operator may choose: lower-case ASCII letters, digits, single '-' or '_'
    between them, at most the column's length."""
    return bool(SLUG_RE.match(slug or "")) and len(slug) <= MAX_LENGTH


def segment_slug_choose(*, given: str, name: str) -> str:
    """The slug of a new segment: the operator's own (normalised to lower case and
    checked; a taken one is refused by the caller), else one made from the name."""
    given = (given or "").strip().lower()
    if not given:
        return segment_slug_new(name)
    if not slug_is_valid(given):
        raise ApplicationError(
            _("A slug is lower-case letters (a–z), digits, and '-' or '_' between them, at most %(n)s characters.")
            % {"n": MAX_LENGTH},
            code="invalid_slug",
            details={"field": "slug"},
        )
    return given
