"""Passwords in odd places of a Redis URL: every form redis-py takes as a password must be masked.

redis-py's parse_url reads the query with parse_qs, which percent-decodes the parameter's name too:
`?pass%77ord=…` and `?%70assword=…` are the password, exactly as `?password=…`.
"""

from __future__ import annotations

import pytest
from redis.connection import parse_url

from config.error_reports import redact_text, redact_url
from queues.connections import redacted_url

SECRET = "Zq9-h16-s3cret"

URLS = [
    f"redis://u:{SECRET}@127.0.0.1:6379/0",
    f"redis://:{SECRET}@[::1]:6379/0",
    f"rediss://127.0.0.1:6380/0?ssl_password={SECRET}",
    f"redis://127.0.0.1:6379/0?password={SECRET}",
    f"unix:///tmp/redis.sock?password={SECRET}",
    f"unix://:{SECRET}@/tmp/redis.sock",
    f"redis://127.0.0.1:6379/0?pass%77ord={SECRET}",
    f"redis://127.0.0.1:6379/0?%70assword={SECRET}",
    f"redis://127.0.0.1:6379/0?db=1&%70%61%73%73%77%6f%72%64={SECRET}",
    f"rediss://127.0.0.1:6380/0?ssl%5Fpassword={SECRET}",
]


@pytest.mark.parametrize("url", URLS)
def test_redis_py_reads_a_password_here(url: str) -> None:
    """The attack is real: redis-py would log in with this password (or decrypt the key with it)."""
    options = parse_url(url)
    assert SECRET in (options.get("password"), options.get("ssl_password"))


# Not a password to redis-py (names are case-sensitive there), but masked all the same.
MASKED_TOO = [
    f"redis://127.0.0.1:6379/0?PassWord={SECRET}",
    f"redis://127.0.0.1:6379/0?x=1;password={SECRET}",
]


@pytest.mark.parametrize("url", URLS + MASKED_TOO)
def test_the_dashboards_redacted_url_masks_it(url: str) -> None:
    assert SECRET not in redacted_url(url)


@pytest.mark.parametrize("url", URLS + MASKED_TOO)
def test_error_reports_mask_it(url: str) -> None:
    assert SECRET not in redact_url(url)
    assert SECRET not in redact_text(f"connecting to {url} failed")


def test_other_parameters_stay_as_they_are() -> None:
    url = "redis://127.0.0.1:6379/0?db=1&ssl_cert_reqs=none&%70ath=x"
    assert redacted_url(url) == url
    assert redact_url(url) == url


# A password with an unencoded `?`, `#` or `/` breaks the URL's user info: redis-py cannot use it, but it
# is the operator's password all the same. config.error_reports masks up to the last `@`; the dashboard's
# redacted_url masks up to the last `@` as well.
UNENCODED = [
    f"redis://u:ab?{SECRET}@127.0.0.1/0",
    f"redis://u:ab#{SECRET}@127.0.0.1/0",
    f"redis://u:a/{SECRET}@h/0",
]


@pytest.mark.parametrize("url", UNENCODED)
def test_error_reports_mask_a_password_that_breaks_the_url(url: str) -> None:
    assert SECRET not in redact_url(url)


@pytest.mark.parametrize("url", UNENCODED)
def test_redacted_url_masks_a_password_that_breaks_the_url(url: str) -> None:
    assert SECRET not in redacted_url(url)


def test_a_debug_error_page_masks_a_percent_encoded_password_name() -> None:
    """The whole DEBUG report (settings, frame variables, the message) of an error raised with such a URL."""
    import sys

    from django.test import RequestFactory, override_settings

    from config.error_reports import RedactingExceptionReporter, RedactingExceptionReporterFilter

    url = f"redis://127.0.0.1:6379/0?%70assword={SECRET}"
    connections = {"CONNECTIONS": {"default": {"URL": url}}}
    with override_settings(
        BULLMQ_DASHBOARD=connections,
        DEFAULT_EXCEPTION_REPORTER_FILTER="config.error_reports.RedactingExceptionReporterFilter",
    ):
        request = RequestFactory().get("/", {"next": url})
        try:
            local_url = url  # noqa: F841 - a frame variable the report shows
            raise RuntimeError(f"could not reach {url}")
        except RuntimeError:
            reporter = RedactingExceptionReporter(request, *sys.exc_info())
            reporter.filter = RedactingExceptionReporterFilter()
            html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
    assert SECRET not in html
    assert SECRET not in text
