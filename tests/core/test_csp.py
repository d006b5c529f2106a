"""The Content-Security-Policy: every response says nothing may come from another site
and no script may run inline; and no template carries an inline script to be refused."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.chromium import CHROMIUM, chromium_page

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


@pytest.mark.parametrize("path", ["/login/", "/api/docs/", "/healthz", "/api/v1/customers/", "/no-such-page/"])
def test_every_response_carries_the_policy(client, db, path):
    policy = _policy(client.get(path))
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert all("http" not in value and value != "*" for values in policy.values() for value in values)


def test_no_template_runs_a_script_inline():
    inline = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
    handlers = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I)
    problems = [
        f"{path.relative_to(TEMPLATES)}: {kind}"
        for path in TEMPLATES.rglob("*.html")
        for kind, pattern in (("inline <script>", inline), ("on… handler", handlers))
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def test_the_api_docs_run_under_the_policy(live_server, monkeypatch):
    """Swagger UI starts from our own files (drf-spectacular's split view), refused nothing."""
    with chromium_page(monkeypatch) as page:
        refused = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".swagger-ui .info")
        assert "Ops Desk API" in page.locator(".swagger-ui .info").inner_text()
        assert refused == []
