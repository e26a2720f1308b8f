"""The job page for the 3 a.m. operator: collapsed traces, cut values called cut, the timeline, and the
top bar's "open a job by id" across every queue the user may view."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")


def only_email(user: Any, action: str, queue: QueueRef | None) -> bool:
    """A per-queue view restriction: this user sees bull:email only."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key != "bull:email":
        return False
    return default_permission(user, action, queue)


async def fail_three_times(redis_url: str, job_id: str = "f1") -> None:
    await add_jobs(redis_url, "email", [("send", {"to": "a@b"}, {"attempts": 3, "jobId": job_id})])

    async def fail(job: Any, token: str) -> None:
        raise ConnectionError("SMTP timeout")

    await process(redis_url, "email", fail, until=1)


async def test_identical_traces_are_shown_once_with_their_count_and_attempts(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await fail_three_times(redis_url)
    stored = await redis_client.hget("bull:email:f1", "stacktrace")
    assert stored is not None and stored.count(b"ConnectionError: SMTP timeout") == 3

    html = (await client.get(links.job_url(EMAIL, "f1"))).content.decode()

    assert html.count('<pre class="trace" id="trace-') == 1
    assert 'data-trace-count="3"' in html
    assert "the same trace \u00d73" in html
    assert "attempts 1, 2, 3" in html
    # The failure and its traces come before the data and options.
    assert html.index('id="failure"') < html.index('id="panel-data"') < html.index('id="panel-opts"')
    # Copy buttons: the id, the failed reason, the trace.
    assert 'data-copy-text="f1"' in html
    assert 'data-copy-target="failed-reason"' in html and 'data-copy-target="trace-1"' in html


async def test_a_value_cut_at_the_display_limit_is_called_cut_never_invalid(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(
        redis_url,
        "email",
        [
            ("big", {"blob": "x" * 200_000}, {"jobId": "big"}),
            ("huge", {"blob": "y" * 2_000_000}, {"jobId": "huge"}),
        ],
    )

    big = (await client.get(links.job_url(EMAIL, "big"))).content.decode()
    huge = (await client.get(links.job_url(EMAIL, "huge"))).content.decode()

    assert "not valid JSON" not in big and "not valid JSON" not in huge
    assert re.search(r"shown cut at 64\.0.KB of 195\.3.KB", big), big[big.find("panel-data") :][:600]
    assert "Shown cut at 64.0" in big and "Open the full value" in big
    assert re.search(r"not read: 1\.9.MB", huge)
    assert "Open the full value" in huge


async def test_the_timeline_shows_created_delay_attempts_and_what_bullmq_does_not_keep(
    client: AsyncClient, redis_url: str
) -> None:
    await fail_three_times(redis_url)
    await add_jobs(redis_url, "email", [("later", {}, {"jobId": "d1", "delay": 3_600_000})])

    failed = (await client.get(links.job_url(EMAIL, "f1"))).content.decode()
    delayed = (await client.get(links.job_url(EMAIL, "d1"))).content.decode()

    timeline = failed[failed.index('id="timeline"') :]
    assert 'data-timeline="created"' in timeline and 'data-timeline="finished"' in timeline
    # Three attempts from the events stream, numbered, the last one failed.
    attempts = re.findall(r'data-timeline="attempt" data-attempt="(\d*)"', timeline)
    assert attempts == ["1", "2", "3"]
    assert "3 attempts made, 3 started, 3 stack traces kept." in timeline
    assert "earlier attempts' start and end times are not kept in the job" in timeline
    assert "Searched the whole events stream" in timeline
    assert 'data-timeline="delayed"' not in timeline

    assert 'data-timeline="delayed"' in delayed and "(a delay of 1 h" in delayed
    assert "not started yet" in delayed and not re.search(r'data-timeline="attempt"', delayed)


async def test_the_timeline_says_the_window_when_the_stream_holds_more_than_is_searched(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "old"})])
    # Another program's burst of events pushes this job's events out of the searched window.
    for index in range(2500):
        await redis_client.xadd("bull:email:events", {"event": "progress", "jobId": f"other-{index}"})

    html = (await client.get(links.job_url(EMAIL, "old"))).content.decode()

    # The job's own `added` and `waiting` events, then the burst.
    assert "Searched the newest 2,000 of the 2,502 entries of the events stream" in html
    assert "No events of this job there." in html


async def test_an_events_stream_larger_than_the_read_bound_is_not_read(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """One failed job's 8 MB error message in the stream (BullMQ copies failedReason into the event):
    reading the stream an entry at a time would still copy that entry whole, on every job page view."""
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    await redis_client.xadd(
        "bull:email:events", {"event": "failed", "jobId": "other", "failedReason": "x" * 8_000_000}
    )

    def xrevranges(stats: dict[str, Any]) -> int:
        return int(stats.get("cmdstat_xrevrange", {}).get("calls", 0))

    before = xrevranges(await redis_client.info("commandstats"))
    html = (await client.get(links.job_url(EMAIL, "e1"))).content.decode()
    assert xrevranges(await redis_client.info("commandstats")) == before  # no entry copied, not even one
    assert "is too large to read here, so the times of earlier attempts are not shown" in html


async def test_the_latest_log_lines_and_the_log_filter_are_on_the_page(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "l1"})])

    async def log_and_finish(job: Any, token: str) -> str:
        for index in range(130):
            await job.log(f"line {index}")
        return "ok"

    await process(redis_url, "email", log_and_finish, until=1)
    html = (await client.get(links.job_url(EMAIL, "l1"))).content.decode()

    tail = html[html.index('id="log-tail"') : html.index("</section>", html.index('id="log-tail"'))]
    assert re.findall(r"<li>(line \d+)</li>", tail) == [f"line {i}" for i in range(125, 130)]
    assert 'start="126"' in tail
    assert html.index('id="log-tail"') < html.index('id="panel-data"')
    assert 'data-log-filter="log-lines"' in html and "Filters only the lines of this page." in html


# ---------------------------------------------------------------- open a job by id from the top bar


async def test_the_top_bar_form_is_on_every_page(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    for url in (links.lookup_url(), links.queue_url(EMAIL), links.job_url(EMAIL, "e1")):
        response = await client.get(url if url != links.lookup_url() else url + "?id=e1", follow=True)
        assert f'action="{links.lookup_url()}"' in response.content.decode()


async def test_one_match_redirects_to_the_job_with_the_id_percent_encoded(
    client: AsyncClient, redis_url: str
) -> None:
    job_id = "../../x y&z#"
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "order-1"})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": job_id})])

    response = await client.get(links.lookup_url(job_id))

    assert response.status_code == 302
    assert response["Location"] == links.job_url(SMS, job_id)
    assert response["Location"].endswith("?id=" + quote(job_id, safe=""))
    assert "../" not in response["Location"]
    page = await client.get(response["Location"])
    assert page.status_code == 200

    api = (await client.get(links.lookup_api_url(job_id))).json()
    assert [(m["queue"], m["state"], m["html_url"]) for m in api["matches"]] == [
        ("bull:sms", "waiting", links.job_url(SMS, job_id))
    ]


async def test_several_matches_are_listed_with_their_state(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "shared"})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": "shared", "delay": 60_000})])

    response = await client.get(links.lookup_url("shared"))

    assert response.status_code == 200
    html = response.content.decode()
    matches = re.findall(r'<a class="mono" href="([^"]+)" data-lookup-match>([^<]+)</a>', html)
    assert sorted(matches) == sorted(
        [(links.job_url(EMAIL, "shared"), "bull:email"), (links.job_url(SMS, "shared"), "bull:sms")]
    )
    assert "state-waiting" in html and "state-delayed" in html
    api = (await client.get(links.lookup_api_url("shared"))).json()
    assert sorted((m["queue"], m["state"]) for m in api["matches"]) == [
        ("bull:email", "waiting"),
        ("bull:sms", "delayed"),
    ]
    assert api["queuesSearched"] == api["queuesVisible"] == 2


async def test_no_match_is_a_404_offering_each_queues_search(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": "s1"})])

    response = await client.get(links.lookup_url("../../x"))

    assert response.status_code == 404
    html = response.content.decode()
    searches = re.findall(r'<a href="([^"]+)" data-lookup-search>', html)
    assert sorted(searches) == sorted(
        [
            links.search_url(EMAIL) + "?q=..%2F..%2Fx",
            links.search_url(SMS) + "?q=..%2F..%2Fx",
        ]
    )
    assert (await client.get(links.lookup_api_url("nope"))).json()["matches"] == []


async def test_a_key_that_is_not_a_job_is_no_match(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    await redis_client.set("bull:email:plain-string", "not a job")

    response = await client.get(links.lookup_url("plain-string"))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    ["id=meta", "id=e1%3Alogs", "id=%FF%FE", "id=", "id=a&id=b", "id=" + "a" * 1100, "id=repeat%3Anightly"],
)
async def test_hostile_ids_are_refused(client: AsyncClient, redis_url: str, query: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])

    page = await client.get(f"{links.lookup_url()}?{query}")
    api = await client.get(f"{links.lookup_api_url()}?{query}")

    assert page.status_code == 400 and api.status_code == 400
    assert "error" in api.json()


async def test_a_user_who_may_view_one_queue_never_learns_of_matches_elsewhere(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "both"})])
    await add_jobs(redis_url, "sms", [("send", {"secret": "sms-data"}, {"jobId": "both"})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": "only-sms"})])
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_job_reading.only_email"
        )
    ):
        reset_directories()
        both = await client.get(links.lookup_url("both"))
        assert both.status_code == 302 and both["Location"] == links.job_url(EMAIL, "both")

        hidden = await client.get(links.lookup_url("only-sms"))
        missing = await client.get(links.lookup_url("never-was"))
        assert hidden.status_code == missing.status_code == 404
        for response in (hidden, missing):
            html = response.content.decode()
            assert "bull:sms" not in html and "sms-data" not in html
        api = (await client.get(links.lookup_api_url("only-sms"))).json()
        assert api["matches"] == [] and api["queuesVisible"] == 1
        assert "bull:sms" not in str(api)


async def test_the_lookup_needs_a_login(anonymous_client: AsyncClient) -> None:
    page = await anonymous_client.get(links.lookup_url("e1"))
    api = await anonymous_client.get(links.lookup_api_url("e1"))
    assert page.status_code == 302 and api.status_code == 401


async def test_the_id_is_looked_up_exactly_as_given(client: AsyncClient, redis_url: str) -> None:
    """ " job7" and "job7" are two jobs: trimming the id would open the other one."""
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "job7"}), ("send", {}, {"jobId": " job7"})])
    response = await client.get(links.lookup_url() + "?id=%20job7")
    assert response.status_code == 302 and response["Location"] == links.job_url(EMAIL, " job7")
