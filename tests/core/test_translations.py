"""The zh_Hans catalogue is complete: no empty or fuzzy translation, and every msgid
the code and templates use is in it (``makemessages`` run on a copy of the sources
would add none). Together with tests/browser/test_chinese_ui.py this keeps every
operator-facing word translated."""

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# What makemessages reads: the apps, the project package and the templates.
SOURCES = ["campaigns", "communities", "console", "core", "dashboards", "feedback", "incentives", "ops_site",
           "segments", "templates", "users"]  # fmt: skip


def _untranslated(entries) -> list[str]:
    problems = []
    for entry in entries:
        if entry.obsolete or not entry.msgid:
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {entry.msgid!r}")
        elif entry.msgid_plural:
            if not entry.msgstr_plural or any(not v for v in entry.msgstr_plural.values()):
                problems.append(f"empty plural: {entry.msgid!r}")
        elif not entry.msgstr:
            problems.append(f"empty: {entry.msgid!r}")
    return problems


def test_the_catalogue_has_no_empty_or_fuzzy_translation():
    assert _untranslated(polib.pofile(str(CATALOGUE))) == []


def test_untranslated_entries_are_found():
    po = polib.POFile()
    po.append(polib.POEntry(msgid="Translated", msgstr="已翻译"))
    po.append(polib.POEntry(msgid="Empty", msgstr=""))
    po.append(polib.POEntry(msgid="Fuzzy", msgstr="模糊", flags=["fuzzy"]))
    po.append(polib.POEntry(msgid="one", msgid_plural="many", msgstr_plural={0: ""}))
    assert _untranslated(po) == ["empty: 'Empty'", "fuzzy: 'Fuzzy'", "empty plural: 'one'"]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is missing (apt-get install gettext)")
def test_every_msgid_in_the_code_is_in_the_catalogue(tmp_path):
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (tmp_path / "locale").mkdir()
    shutil.copytree(CATALOGUE.parent.parent, tmp_path / "locale" / "zh_Hans")
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "--no-location"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    regenerated = polib.pofile(str(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    known = {(e.msgctxt, e.msgid) for e in polib.pofile(str(CATALOGUE)) if not e.obsolete}
    missing = [e.msgid for e in regenerated if e.msgid and (e.msgctxt, e.msgid) not in known]
    assert missing == [], f"msgids in the code but not in {CATALOGUE.relative_to(ROOT)}; run makemessages"
    assert _untranslated(regenerated) == []
