"""The pages, toasts and answers in German: for a host whose LANGUAGE_CODE is German (no middleware
needed), and per request through Django's LocaleMiddleware and the browser's Accept-Language. Job content
(names, data, reasons, ids) is shown as stored, whatever the language; the audit log keeps English."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import AsyncClient, override_settings
from django.urls import reverse

from dashboard import links
from dashboard.models import AuditEntry
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
# Job content made of words the dashboard itself translates: it must stay as it is.
NAME = "waiting"
REASON = "Remove failed"


async def failed_job(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [(NAME, {"state": "completed", "note": "Queues"}, {"jobId": "f1"})])
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])

    async def fail(job: Any, token: str) -> None:
        raise RuntimeError(REASON)

    await process(redis_url, "email", fail, until=2)


def with_locale_middleware() -> list[str]:
    """The project's middleware with Django's LocaleMiddleware after the session middleware, as Django's
    documentation places it."""
    middleware = list(settings.MIDDLEWARE)
    session = next(index for index, path in enumerate(middleware) if path.endswith("SessionMiddleware"))
    middleware.insert(session + 1, "django.middleware.locale.LocaleMiddleware")
    return middleware


@override_settings(LANGUAGE_CODE="de")
async def test_a_german_host_gets_german_pages_and_job_content_as_stored(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await failed_job(redis_url)

    overview = (await admin_client.get(dashboard_url())).content.decode()
    assert 'class="bullmq-dashboard" lang="de"' in overview  # inside a host's base template too
    assert "Warteschlangen" in overview and "1 Warteschlange" in overview
    assert ">fehlgeschlagen</a></th>" in overview and ">wartend</th>" in overview
    assert '"justNow": "gerade eben"' in overview  # the scripts' words

    queue = (await admin_client.get(links.queue_url(EMAIL) + "?state=failed")).content.decode()
    assert "2 Jobs im Zustand „fehlgeschlagen“" in queue
    assert ">Wiederholen</button>" in queue and "Alle fehlgeschlagenen wiederholen" in queue
    # the confirm dialog of a row (the job id is filled in from data-confirm-job)
    assert "Job {job} im Zustand „fehlgeschlagen“ mit seinen Logs entfernen." in queue
    assert f'<td class="name" title="{NAME}">{NAME}</td>' in queue
    assert REASON in queue
    assert "Retry" not in queue and "Remove job" not in queue

    job = (await admin_client.get(links.job_url(EMAIL, "f1"))).content.decode()
    assert "<dt>Erstellt</dt>" in job and "<dt>Versuche</dt>" in job and "Fehlergrund" in job
    assert f"<h1>{NAME} " in job  # the job's name, not the state it happens to spell
    assert "&quot;state&quot;: &quot;completed&quot;" in job and "&quot;note&quot;: &quot;Queues&quot;" in job
    assert REASON in job
    assert "Daten bearbeiten" in job and "Stacktraces" in job


@override_settings(LANGUAGE_CODE="de")
async def test_a_german_toast_and_answer_and_an_english_audit_entry(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await failed_job(redis_url)

    toast = await admin_client.post(
        links.job_action_url(EMAIL, "retry", "f1"), headers={"HX-Request": "true"}
    )
    assert toast.status_code == 200
    html = toast.content.decode()
    assert "Job f1 von „fehlgeschlagen“ nach „wartend“ verschoben." in html
    assert 'aria-label="Schließen"' in html

    conflict = await admin_client.post(
        links.job_action_url(EMAIL, "retry", "f1"), data=json.dumps({}), content_type="application/json"
    )
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        "Job f1 ist jetzt wartend; dafür muss er fehlgeschlagen oder abgeschlossen sein."
    )

    bad = await admin_client.post(
        links.queue_action_url(EMAIL, "clean"),
        data=json.dumps({"state": "nope", "grace": 0, "limit": 1}),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("state muss einer dieser Werte sein: completed, failed")

    entries = [entry async for entry in AuditEntry.objects.order_by("id")]
    assert [entry.message for entry in entries][:2] == [
        "Job f1 moved from failed to waiting.",
        "Job f1 is waiting now; this needs it failed or completed.",
    ]
    audit_page = (await admin_client.get(reverse("bullmq_dashboard:audit"))).content.decode()
    assert "Audit-Log" in audit_page and ">erledigt</span>" in audit_page and ">Konflikt</span>" in audit_page


async def test_locale_middleware_picks_the_language_of_each_request(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await failed_job(redis_url)
    url = links.queue_url(EMAIL) + "?state=failed"

    with override_settings(MIDDLEWARE=with_locale_middleware()):
        german = (await admin_client.get(url, headers={"Accept-Language": "de-DE,de;q=0.9"})).content.decode()
        english = (await admin_client.get(url, headers={"Accept-Language": "en"})).content.decode()
        missing = await admin_client.get(links.job_url(EMAIL, "nope"), headers={"Accept-Language": "de"})

    # The same rows, rendered once per language (rendered rows are kept per language).
    assert ">Wiederholen</button>" in german and ">Retry</button>" not in german
    assert ">Retry</button>" in english and "Wiederholen" not in english
    assert "2 failed jobs" in english and "Job {job} im Zustand" not in english
    assert missing.status_code == 404
    assert "Kein Job &#x27;nope&#x27; in der Warteschlange bull:email." in missing.content.decode()
    assert "Nicht gefunden" in missing.content.decode()


async def test_without_a_language_the_pages_stay_english(admin_client: AsyncClient, redis_url: str) -> None:
    await failed_job(redis_url)
    html = (await admin_client.get(links.queue_url(EMAIL) + "?state=failed")).content.decode()
    assert "2 failed jobs" in html and ">Retry</button>" in html and "Wiederholen" not in html
