"""One way to open Debian's Chromium for the browser tests (headless, no sandbox, no
background networking: the machine has no network beyond loopback)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium_page(monkeypatch, *, timeout_ms: int = 15_000, locale: str = "zh-CN") -> Iterator:
    # Playwright's sync API runs an event loop in this thread, and Django refuses
    # synchronous database calls while one runs; they are safe here (one thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        try:
            yield page
        finally:
            context.close()
            browser.close()
