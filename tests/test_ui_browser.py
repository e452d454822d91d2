"""End to end in real headless Chromium: log in to /ui, open a contact, see its timeline.

Skips with a reason where Chromium is absent; FAILS where ``CI`` is set (CI installs Debian's
``chromium`` package, so there the test must run). Set ``ENGINY_SCREENSHOT_DIR`` to also save
the pages it visits as PNGs (``bench/screenshot.py`` saves ``docs/dashboard.png``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from adapter.app import create_app
from backends.memory import MemoryBackend
from tests.browser_support import find_chromium, free_port, launch_chromium, seed_demo, serve
from tests.conftest import API_KEY, UI_PASSWORD, make_settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        reason = ("Chromium not found (install Debian's `chromium` package or set "
                  "ENGINY_CHROMIUM to its path)")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the browser test is mandatory")
        pytest.skip(reason)
    try:
        import websockets  # noqa: F401
    except ImportError:
        pytest.fail("the browser test needs the `websockets` package (test extra)")
    return binary


@pytest.fixture
def site() -> Iterator[tuple[str, dict[str, str]]]:
    app = create_app(make_settings(), MemoryBackend())
    with serve(app, free_port()) as base:
        yield base, seed_demo(base, API_KEY)


def test_log_in_open_a_contact_and_see_its_timeline(
    chromium: str, site: tuple[str, dict[str, str]]
) -> None:
    from tests.browser_support import Browser

    base, ids = site
    shots = os.environ.get("ENGINY_SCREENSHOT_DIR")
    with launch_chromium(chromium) as page_ws, Browser.connect(page_ws) as browser:
        # Without credentials the browser is challenged and gets nothing.
        browser.start(credentials=None)
        browser.goto(f"{base}/ui")
        assert browser.auth_challenges >= 1
        assert "Authentication required" in browser.evaluate("document.body.innerText")

        # Log in: answer the HTTP Basic challenge with any username and the dashboard password.
        browser.credentials = ("enginy", UI_PASSWORD)
        browser.goto(f"{base}/ui")
        assert browser.evaluate("document.querySelector('h1').innerText") == "Overview"
        overview = browser.evaluate("document.body.innerText")
        assert f"{base}/ui/contacts/{{{{crmId}}}}" in overview
        assert API_KEY not in browser.evaluate("document.documentElement.outerHTML")
        # Served over plain HTTP: the base URL carries the HTTPS warning, visibly.
        warning = browser.evaluate("document.querySelector('#https-warning').innerText")
        assert warning.startswith("Not HTTPS.")
        assert browser.evaluate(
            "getComputedStyle(document.querySelector('#https-warning')).display") != "none"
        if shots:
            browser.screenshot(os.path.join(shots, "dashboard-overview.png"))

        # Search the list as a user would: type, submit, follow the only result.
        browser.click("nav a[href$='/ui/contacts']")
        assert browser.evaluate("document.querySelectorAll('#records tbody tr').length") == 2
        browser.evaluate("document.querySelector('.filters input[name=q]').value = 'SOLER'")
        browser.click(".filters button")
        assert browser.evaluate("location.search") == "?q=SOLER"
        assert browser.evaluate("document.querySelectorAll('#records tbody tr').length") == 1
        browser.click(f"#records a[href$='/ui/contacts/{ids['contact']}']")
        assert browser.evaluate("location.pathname") == f"/ui/contacts/{ids['contact']}"
        items = browser.evaluate(
            "[...document.querySelectorAll('#timeline .activity')].map(e => "
            "[e.className, e.querySelector('.type').innerText])")
        assert [i[1] for i in items] == [
            "EMAIL", "EMAIL", "LINKEDIN", "LINKEDIN_CONNECTION"]  # newest first
        assert [i[0].split()[-1] for i in items] == [
            "dir-inbound", "dir-outbound", "dir-inbound", "dir-outbound"]
        # The stylesheet is applied: direction styling is visible, not only a class.
        inbound_border = browser.evaluate(
            "getComputedStyle(document.querySelector('.dir-inbound')).borderLeftWidth")
        assert inbound_border == "4px"
        # The stored <script> is text on the page, and nothing ran.
        assert "<script>alert(1)</script>" in browser.evaluate("document.body.innerText")
        assert browser.evaluate("document.scripts.length") == 0
        assert "Northwind Analytics" in browser.evaluate(
            "document.querySelector('#associations').innerText")
        assert "Call Marta about the pilot" in browser.evaluate(
            "document.querySelector('#tasks').innerText")
        if shots:
            browser.screenshot(os.path.join(shots, "dashboard.png"))
