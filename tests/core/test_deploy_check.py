import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}}
    base.update(DJANGO_SETTINGS_MODULE="ops_site.settings.production", OPS_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check(tmp_path):
    key = secrets.token_urlsafe(48)[:60]
    result = _run(tmp_path, SECRET_KEY=key, ALLOWED_HOSTS="example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert key not in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _run(tmp_path, ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_short_secret_key(tmp_path):
    result = _run(tmp_path, SECRET_KEY="too-short", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_sqlite_version_check_names_what_is_missing():
    from core.checks import sqlite_version_errors

    sqlite = "django.db.backends.sqlite3"
    (error,) = sqlite_version_errors(engine=sqlite, version=(3, 31, 1))
    assert error.id == "core.E001" and "3.31.1" in error.msg and "3.39.0" in error.msg
    assert sqlite_version_errors(engine=sqlite, version=(3, 40, 1)) == []
    assert sqlite_version_errors(engine="django.db.backends.postgresql", version=(3, 31, 1)) == []
