import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from core.models import ApiScope
from core.services import api_key_create


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` skip, with the reason, on the embedded SQLite default."""
    from django.conf import settings

    if settings.USING_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks / COPY); run with DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _display_names_fresh():
    """core.selectors keeps a per-process copy of the display names; each test reads its
    own database's (rolled back, flushed or restored between tests)."""
    from core import selectors

    selectors._local["names"] = None


@pytest.fixture
def make_user(db):
    """``make_user("operator")`` → a user in that role group (staff for admins)."""

    def _make(role: str | None = None, username: str | None = None, **extra):
        user = get_user_model().objects.create_user(
            username=username or f"{role or 'nobody'}-user", password="correct-horse-battery", **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
            if role == "admin":
                user.is_staff = True
                user.save(update_fields=["is_staff"])
        return user

    return _make


@pytest.fixture
def api_key(db):
    """A key with every scope; the full secret is in ``.full``."""
    key, full = api_key_create(name="backend", scopes=list(ApiScope.values))
    key.full = full
    return key


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.full}")
    return client


@pytest.fixture
def make_api(db):
    """``make_api(["customers:read"])`` → a client whose key has just those scopes."""

    def _make(scopes: list[str]):
        _key, full = api_key_create(name="scoped", scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
        return client

    return _make


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


def _database_url_for_worker() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}{port}/{s['NAME']}"


@pytest.fixture
def worker_queue():
    """A real `celery worker` process on the configured broker (Redis, or the file-system
    broker), consuming a queue of its own, on the test database. Its default queue is that
    queue too, so what the worker itself sends (a chord's join) stays on it. Use with a
    transactional test: the worker sees only committed data."""
    from ops_site.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_worker(),
        "DJANGO_SETTINGS_MODULE": "ops_site.settings.test",
        "CELERY_DEFAULT_QUEUE": queue,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ops_site",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = old_queue
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode not in (0, -15, None):
            print(out)
