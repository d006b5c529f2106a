"""Text as the keyword rules see it.

1. NFKC: full-width letters, digits and punctuation become their half-width forms
   (``ＶＩＰ`` → ``VIP``, ``１２３`` → ``123``), compatibility forms fold (``㈱``).
2. Case folded (``Refund`` → ``refund``).
3. Traditional → simplified Chinese, character by character from zhconv's zh-hans
   table (``退款`` = ``退款``, ``發票`` → ``发票``). Phrase-level conversions are left out:
   they need a dictionary walk that costs ten times more and rarely change a keyword.
4. Separators removed: whitespace, punctuation, symbols and invisible format
   characters (zero-width spaces), so ``退 款``, ``退-款``, ``退.款`` and ``退​款`` all read
   ``退款``. Words run together as a result (``re fund`` → ``refund``): a keyword is
   matched anywhere in the squeezed text, and a pattern sees the same squeezed text.

Steps 2–4 are one ``str.translate`` with a table built once, so the whole is three
C-level passes over the text."""

import sys
import unicodedata
from functools import lru_cache

from zhconv import zhconv as _zhconv

_SEPARATOR_CATEGORIES = ("Z", "P", "S", "Cc", "Cf")


@lru_cache(maxsize=1)
def _table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for source, target in _zhconv.getdict("zh-hans").items():
        if len(source) == 1 and len(target) == 1 and source != target:
            table[ord(source)] = target
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category.startswith(_SEPARATOR_CATEGORIES[:3]) or category in _SEPARATOR_CATEGORIES[3:]:
            table[code] = None
    return table


def normalise(text: str) -> str:
    """The form keyword rules are matched against (see the module's docstring)."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_table())
