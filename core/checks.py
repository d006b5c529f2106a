"""System checks of what the embedded default needs from its surroundings."""

import sqlite3

from django.conf import settings
from django.core.checks import Error, register

# The bulk paths' SQL (UPDATE … FROM, IS DISTINCT FROM, RETURNING) needs SQLite 3.39.
MIN_SQLITE = (3, 39, 0)


@register()
def sqlite_version_check(app_configs, **kwargs):
    return sqlite_version_errors(engine=settings.DATABASES["default"]["ENGINE"], version=sqlite3.sqlite_version_info)


def sqlite_version_errors(*, engine: str, version: tuple) -> list[Error]:
    if not engine.endswith("sqlite3") or version >= MIN_SQLITE:
        return []
    return [
        Error(
            f"SQLite {'.'.join(map(str, version))} is too old for Ops Desk's embedded default: it needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer (UPDATE … FROM, IS DISTINCT FROM).",
            hint="Use a Python built against a newer SQLite, or set DATABASE_URL to PostgreSQL.",
            id="core.E001",
        )
    ]
