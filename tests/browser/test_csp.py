"""The standalone site's Content-Security-Policy in Chromium: no page trips it, and the theme still boots
before first paint from its own file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from config.security_headers import DEFAULT_POLICY
from tests.browser.conftest import LiveSite

pytestmark = pytest.mark.browser

# Runs in every document before its own scripts: records CSP violations, the websocket opening, and the
# theme at the moment the parser inserts the stylesheet (theme.js must have run by then).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = event.sourceFile + ":" + event.lineNumber;
  window.__csp.push(event.violatedDirective + " " + event.blockedURI + " " + where);
});
document.addEventListener("htmx:wsOpen", () => { window.__wsOpen = true; });
new MutationObserver((mutations, observer) => {
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.nodeName === "LINK" && node.rel === "stylesheet") {
        window.__themeAtStylesheet = document.documentElement.dataset.bullmqTheme || "auto";
        observer.disconnect();
        return;
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


class Watched:
    """A page with everything that could show a CSP problem recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.bad_responses: list[str] = []
        self.policies: dict[str, str | None] = {}
        page.on("console", self.on_console)
        page.on("response", self.on_response)

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console.append(message.text)

    def on_response(self, response: Any) -> None:
        if "/static/" in response.url and response.status != 200:
            self.bad_responses.append(f"{response.status} {response.url}")
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy")

    def check(self, what: str, loaded: bool = True) -> None:
        """No violation in this document, no CSP error in the console so far, every static file loaded;
        `loaded`: the URL shown was loaded as a document (not pushed by htmx), with the policy."""
        violations = self.page.evaluate("window.__csp")
        assert violations == [], (what, violations)
        csp_errors = [
            text for text in self.console if "Content Security Policy" in text or "Refused to" in text
        ]
        assert csp_errors == [], (what, csp_errors)
        assert self.bad_responses == [], (what, self.bad_responses)
        if loaded:
            assert self.policies.get(self.page.url) == DEFAULT_POLICY, (what, self.page.url)
        # The stylesheet applied (hashed name, served by WhiteNoise): the body is not unstyled.
        assert self.page.evaluate("getComputedStyle(document.body).fontFamily") != "Times New Roman"


@pytest.fixture
def watched(browser: Any, live_site: LiveSite) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    watched = Watched(context.new_page())
    yield watched
    context.close()


def log_in(watched: Watched, site: LiveSite) -> None:
    page = watched.page
    page.goto(site.url + "/accounts/login/?next=/queues/")
    watched.check("login page")
    page.fill("input[name=username]", site.username)
    page.fill("input[name=password]", site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")


def test_no_page_violates_the_policy(watched: Watched, live_site: LiveSite) -> None:
    page = watched.page
    log_in(watched, live_site)

    # Overview: htmx and its ws extension run, and the same-origin websocket opens under connect-src 'self'.
    page.wait_for_function("window.__wsOpen === true", timeout=10_000)
    watched.check("overview")

    page.click('a:text-is("interop-main")')
    page.wait_for_url(re.compile(r"/queues/default/bull:interop-main/$"))
    page.wait_for_function("window.__wsOpen === true", timeout=10_000)
    watched.check("queue page")
    page.click('nav.tabs a.tab:has-text("failed")')  # an htmx partial swapped in
    page.wait_for_selector('#job-list[data-list-state="failed"]')
    watched.check("queue page, failed tab", loaded=False)

    page.locator("tr.job-row td.id a").first.click()
    page.wait_for_selector(".job-header")
    page.wait_for_function("window.__wsOpen === true", timeout=10_000)
    watched.check("job page")

    page.goto(live_site.url + "/queues/default/bull:no-such-queue/")
    watched.check("the dashboard's 404 page")


def test_csrf_failure_page_keeps_to_the_policy(watched: Watched, live_site: LiveSite) -> None:
    page = watched.page
    page.goto(live_site.url + "/accounts/login/")
    page.context.clear_cookies()  # the form's token no longer matches any cookie
    page.fill("input[name=username]", live_site.username)
    page.fill("input[name=password]", "whatever")
    page.click("button[type=submit]")
    page.wait_for_selector("text=CSRF verification failed")
    watched.check("CSRF failure page")


def test_theme_boots_from_its_file_before_the_stylesheet(watched: Watched, live_site: LiveSite) -> None:
    page = watched.page
    page.emulate_media(color_scheme="light")
    log_in(watched, live_site)
    assert page.evaluate("window.__themeAtStylesheet") == "auto"

    page.click("#theme-toggle")  # auto -> dark
    assert page.evaluate("localStorage.getItem('bullmq-dashboard-theme')") == "dark"
    page.reload()
    # Set by theme.js before the parser reached the stylesheet: no flash of the light theme.
    assert page.evaluate("window.__themeAtStylesheet") == "dark"
    assert page.evaluate("document.documentElement.dataset.bullmqTheme") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)"
    assert "Dark" in page.inner_text("#theme-toggle")
    watched.check("overview, dark")

    page.click("#theme-toggle")  # dark -> light
    page.goto(live_site.url + "/queues/default/bull:interop-main/")
    assert page.evaluate("window.__themeAtStylesheet") == "light"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"
    watched.check("queue page, light")
