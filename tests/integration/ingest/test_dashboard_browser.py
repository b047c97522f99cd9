"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright) against a
real gunicorn and celery worker: sign-in, the chart drawn from the stored days, the live feed,
and a wrong token refused. Saves a screenshot in tests/artifacts/.

Playwright never downloads a browser here: it drives /usr/bin/chromium (`.ci/run` installs it
with apt-get). Under CI=true a missing chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.error_codes import load_error_codes
from shared.models import AlertGroup, Message
from tests.conftest import API_TOKEN, ROOT, make_env, start_web, start_worker
from tests.twilio_fixtures import callback_fields, new_sid, signed_post

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
PUBLIC = "https://hooks.example.com"
# The bound: a callback shows in the open feed within 2 s of its 200.
FEED_WITHIN_MS = 2000

# (days ago, delivered, failed): the chart's bars, each day's rate = delivered / both.
HISTORY = [(1, 9, 1), (3, 3, 1), (6, 1, 1), (13, 4, 0)]


def _expect() -> object:
    from playwright.sync_api import expect

    return expect


def _browser_or_skip() -> object:
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "playwright is not installed (pip install playwright)"
        sync_playwright = None
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test cannot run under CI: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture
def browser() -> Iterator[object]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:  # type: ignore[operator]
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def seed_history(db, now: datetime) -> None:
    """Messages of earlier days, as the drain would have stored them, and one alert."""
    rows = []
    for days_ago, delivered, failed in HISTORY:
        at = now - timedelta(days=days_ago)
        for status, n in (("delivered", delivered), ("failed", failed)):
            rows += [
                Message(
                    sid=new_sid(),
                    status=status,
                    status_rank=4,
                    error_code=30003 if status == "failed" else None,
                    created_at=at,
                    callback_received_at=at,
                    status_updated_at=at,
                    final_status=status,
                )
                for _ in range(n)
            ]
    rows.append(
        AlertGroup(
            kind="error_code",
            code=30003,
            window_start=now - timedelta(hours=2),
            window_end=now - timedelta(hours=2) + timedelta(seconds=60),
            summary="Messages failed with Twilio error 30003: Unreachable destination handset",
            detail={},
            state="sent",
            sinks_done=["log"],
            attempts=1,
            sent_at=now - timedelta(hours=2),
        )
    )
    with Session(db) as session:
        session.add_all(rows)
        session.commit()


def post_callback(base: str, fields: dict[str, str]) -> int:
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    req = urllib.request.Request(base + "/twilio/status", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_dashboard_in_a_real_browser(browser, spawn, pg_url, redis_base_url, redis_client, db):
    now = datetime.now(UTC)
    seed_history(db, now)
    env = make_env(pg_url, redis_base_url)
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    # Today: one delivered and one failure with a code, stored before the page loads.
    assert post_callback(base, callback_fields(new_sid(), "delivered")) == 200
    failed = callback_fields(new_sid(), "undelivered", ErrorCode="30003")
    assert post_callback(base, failed) == 200

    expect = _expect()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()

    # A wrong token is refused: the form again, with the reason, and no session.
    page.goto(base + "/dashboard")
    page.fill("#token", "not-the-token")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "That is not the API token."
    assert context.cookies() == []
    assert page.evaluate("fetch('/dashboard/data').then(r => r.status)") == 401

    # The right one signs in; the cookie holds no token and no script can read it.
    page.fill("#token", API_TOKEN)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == base + "/dashboard"
    (cookie,) = context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert API_TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    assert API_TOKEN not in page.content()

    # The chart: one bar per seeded day with its rate, and today's (1 of 2 delivered).
    # (Locators, not wait_for_function: the page's CSP forbids the eval that one needs.)
    expect(page.locator("#chart rect.bar")).to_have_count(len(HISTORY) + 1, timeout=15_000)
    bars = page.eval_on_selector_all(
        "#chart rect.bar",
        "bars => bars.map(b => [b.dataset.date, Number(b.dataset.rate),"
        " b.getBoundingClientRect().height])",
    )
    rates = sorted(round(rate, 4) for _, rate, _ in bars)
    expected = sorted([round(d / (d + f), 4) for _, d, f in HISTORY] + [0.5])
    assert rates == expected
    assert all(height > 0 for _, _, height in bars)
    assert len(page.locator("#chart svg text").all()) > 14  # the axis labels

    # Today's counts, the top error code with its action, the alert row; wait for the drain.
    expect(page.locator("#errors tbody")).to_contain_text("30003", timeout=30_000)
    assert "undelivered" in page.locator("#today").inner_text()
    action = load_error_codes(None, "alert").classify(30003)
    assert f"{action.spelling}: {action.reason}" in page.locator("#errors").inner_text()
    assert "30003" in page.locator("#alerts").inner_text()

    # The live feed: a callback sent now shows up within 2 s of its 200.
    page.wait_for_selector("#feed-state[data-state=open]", timeout=15_000)
    sid = new_sid()
    assert post_callback(base, callback_fields(sid, "sent", To="+15005550006")) == 200
    page.wait_for_selector(f'#feed li[data-sid="{sid}"]', timeout=FEED_WITHIN_MS)
    assert "sent" in page.locator(f'#feed li[data-sid="{sid}"]').inner_text()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    context.close()
