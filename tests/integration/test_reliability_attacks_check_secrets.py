"""`manage.py check` over connection URLs that are broken in odd ways, each holding a password."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.support.dashboard import dashboard_settings

SECRET = "Zq9-h16-chk-s3cret"

BROKEN = [
    f"redis://u:{SECRET}@127.0.0.1:99999/0",
    f"redis://u:{SECRET}@127.0.0.1:notaport/0",
    f"redis://u:{SECRET}@[::1/0",
    f"redis://u:{SECRET}@127.0.0.1:6379/abc",
    f"redis://127.0.0.1:6379/0?db=x&password={SECRET}",
    f"redis://127.0.0.1:6379/0?%70assword={SECRET}&socket_timeout=abc",
    f"rediss://127.0.0.1:6379/0?ssl_password={SECRET}&ssl_certfile=/nonexistent/h16.pem",
    f"redis://127.0.0.1:6379/0?ssl_password={SECRET}",
    f"unix://:{SECRET}@/nonexistent/h16.sock?db=zz",
    f"redis://u:{SECRET}@h\u00f6st.example:6379/0",
    f"redis://u:{SECRET}@127.0.0.1:6379/0\n",
    f"http://u:{SECRET}@127.0.0.1:6379/0",
    f"u:{SECRET}@127.0.0.1:6379",
]


def check_output(url: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    settings: dict[str, Any] = dashboard_settings("redis://127.0.0.1:1/0")
    with override_settings(BULLMQ_DASHBOARD={**settings, "CONNECTIONS": {"odd": {"URL": url}}}):
        try:
            call_command("check", stdout=out, stderr=err)
        except Exception as exc:  # SystemCheckError: its message is the report
            err.write(f"{type(exc).__name__}: {exc}")
    return out.getvalue() + err.getvalue()


@pytest.mark.parametrize("url", BROKEN)
def test_check_never_repeats_the_password(url: str) -> None:
    output = check_output(url)
    print(repr(url), "->", output[-400:])
    assert SECRET not in output
    assert "Traceback" not in output
