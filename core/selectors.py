"""Cross-cutting reads: the display names of keys that come from data."""

import time

from django.core.cache import cache
from django.utils import translation

from .models import DisplayName

# The table is small (tens of rows) and read on every page that shows a channel or an
# event, so each process keeps a copy. A save bumps a version in the shared cache; a
# process re-reads the table when it sees a new version (checked at most once a second).
VERSION_KEY = "core:display_names:version"
_RECHECK_SECONDS = 1.0
_local: dict = {"version": None, "checked_at": 0.0, "names": None}


def _names() -> dict[tuple[str, str], DisplayName]:
    now = time.monotonic()
    if _local["names"] is None or now - _local["checked_at"] >= _RECHECK_SECONDS:
        version = cache.get(VERSION_KEY)
        if _local["names"] is None or version != _local["version"]:
            _local["names"] = {(d.kind, d.key): d for d in DisplayName.objects.all()}
            _local["version"] = version
        _local["checked_at"] = now
    return _local["names"]


def display_names_forget() -> None:
    """Drops this process's copy and tells the other processes to drop theirs."""
    _local["names"] = None
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet
        cache.set(VERSION_KEY, 1, timeout=None)


def display_name(kind: str, key, *, language: str | None = None) -> str:
    """``key``'s name in the operator's language (the active one unless given); an
    unknown key, or an empty name, shows as the key itself."""
    if key is None or key == "":
        return ""
    text = str(key).lower() if isinstance(key, bool) else str(key)
    found = _names().get((kind, text))
    if found is None:
        return text
    return found.name_for(language or translation.get_language())


def display_name_keys(kind: str) -> list[str]:
    """The keys of ``kind`` that have a display name, sorted."""
    return sorted(key for k, key in _names() if k == kind)
