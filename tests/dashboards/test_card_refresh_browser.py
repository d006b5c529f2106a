"""In a real headless Chromium: the dashboard's Segments card follows a running
recompute by itself — its progress changes in the database and the card shows it
without a reload — and stops fetching once the run has finished."""

import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from segments.models import RuleSet, SegmentRun

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


def _in_another_thread(work):
    """ORM writes while Playwright's loop runs here: from a thread of their own, whose
    connection is closed afterwards (so nothing holds the test database open)."""

    def run():
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.fixture
def running_run(make_user):
    make_user("operator", username="dora")
    rule_set = RuleSet.objects.filter(is_active=True).order_by("-version").first() or RuleSet.objects.create()
    return SegmentRun.objects.create(
        as_of=timezone.now(), rule_set=rule_set, heartbeat_at=timezone.now(), chunks_total=4, chunks_done=1
    )


def test_the_segments_card_follows_a_running_recompute(running_run, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    errors, fetches = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda r: fetches.append(time.monotonic()) if "/dashboard/segments-card" in r.url else None)
        page.goto(f"{live_server.url}/login/?next=/")
        page.fill("#id_username", "dora")
        page.fill("#id_password", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")
        page.wait_for_selector("[data-card=segments][data-live]")
        assert page.locator("[data-card=segments] [data-role=chunks]").inner_text() == "1 of 4 chunks done"

        _in_another_thread(
            lambda: SegmentRun.objects.filter(pk=running_run.pk).update(chunks_done=3, heartbeat_at=timezone.now())
        )
        # (Not wait_for_function: its string would be eval'd, which the CSP refuses.)
        expect(page.locator("[data-card=segments] [data-role=chunks]")).to_have_text("3 of 4 chunks done")
        assert page.locator("[data-card=segments] [role=progressbar]").get_attribute("aria-valuenow") == "75"

        _in_another_thread(
            lambda: SegmentRun.objects.filter(pk=running_run.pk).update(
                chunks_done=4,
                status=SegmentRun.Status.PUBLISHED,
                published_at=timezone.now(),
                finished_at=timezone.now(),
                phases={"aggregate": 1.0, "publish": 0.1},
            )
        )
        page.wait_for_selector("[data-card=segments][data-run-status=published]")
        assert page.locator("[data-card=segments]").get_attribute("data-live") is None
        status = page.locator("[data-card=segments] [data-role=recompute-status]").inner_text()
        assert "published" in status
        assert page.locator("[data-card=segments] [data-phase=publish]").count() == 1
        settled = len(fetches)
        page.wait_for_timeout(7_000)  # over two polling periods
        after = len(fetches)
        browser.close()

    assert settled >= 2 and after == settled  # it fetched while the run went on, and stopped after
    assert errors == []
