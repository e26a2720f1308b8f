"""The HTML pages against a real Redis holding queues made by the Python bullmq package."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from bullmq import Queue
from django.test import AsyncClient
from django.urls import reverse
from django.utils.html import escape
from redis.asyncio import Redis

from dashboard import links
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.asgi import asgi_get
from tests.support.builders import add_jobs, pause, process
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

HOSTILE = "<img src=x onerror=alert(1)>"
EMAIL = QueueRef("default", "bull", "email")


async def test_overview_lists_every_queue_with_counts_and_data_attributes(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {"i": i}, {}) for i in range(3)])
    await add_jobs(redis_url, "billing", [("invoice", {}, {"delay": 60_000})], prefix="{tenant-a}")
    await add_jobs(redis_url, "webhooks", [("hook", {}, {})])
    await pause(redis_url, "webhooks")

    response = await client.get(dashboard_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-queue="bull:email" data-state="waiting">\s*<a[^>]*>3</a>', html)
    assert re.search(r'data-queue="\{tenant-a\}:billing" data-state="delayed">\s*<a[^>]*>1</a>', html)
    assert 'data-queue="bull:webhooks" data-state="paused-flag">paused' in html
    assert html.index("{tenant-a}") < html.index("billing")  # grouped under its prefix heading


async def test_overview_with_no_queues_says_so(client: AsyncClient) -> None:
    response = await client.get(dashboard_url())
    assert response.status_code == 200
    assert b"No BullMQ queues found" in response.content


async def test_queue_page_lists_jobs_newest_first_and_paginates(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {"i": i}, {"jobId": f"job-{i}"}) for i in range(30)])

    response = await client.get(links.queue_url(EMAIL) + "?state=waiting&per_page=10&page=2")

    assert response.status_code == 200
    ids = re.findall(r'data-job-id="([^"]+)"', response.content.decode())
    expected = [raw.decode() for raw in await redis_client.lrange("bull:email:wait", 10, 19)]
    assert ids == expected == [f"job-{i}" for i in range(19, 9, -1)]
    assert b"page 2 of 3" in response.content


async def test_failed_jobs_show_reason_attempts_and_duration(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"attempts": 2, "jobId": "f1"})])

    async def fail(job, token):
        raise ConnectionError("SMTP timeout\nsecond line")

    await process(redis_url, "email", fail, until=1)
    response = await client.get(links.queue_url(EMAIL) + "?state=failed")
    html = response.content.decode()
    assert 'data-queue="bull:email" data-state="failed">1<' in html
    assert "SMTP timeout" in html and "second line" not in html
    assert re.search(r'<td class="num attempts">2/2</td>', html)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?state=nope", b"Unknown state"),
        ("?page=0", b"page must be between 1"),
        ("?page=abc", b"page must be a whole number"),
        ("?per_page=201", b"per_page must be between 1 and 200"),
        ("?per_page=0", b"per_page must be between 1 and 200"),
    ],
)
async def test_bad_parameters_are_a_clear_400(
    client: AsyncClient, redis_url: str, query: str, message: bytes
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    response = await client.get(links.queue_url(EMAIL) + query)
    assert response.status_code == 400
    assert message in response.content
    assert b"Traceback" not in response.content


async def test_unknown_queue_and_job_are_404(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    assert (await client.get(dashboard_url("default/bull:nope/"))).status_code == 404
    assert (await client.get(dashboard_url("other/bull:email/"))).status_code == 404
    response = await client.get(links.job_url(EMAIL, "missing"))
    assert response.status_code == 404
    assert b"No job" in response.content


async def test_htmx_requests_get_partials_and_history_restores_get_pages(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    url = links.queue_url(EMAIL) + "?state=waiting"
    partial = await client.get(url, headers={"HX-Request": "true"})
    restore = await client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    full = await client.get(url)
    assert b'<div id="queue-body"' in partial.content and b"<html" not in partial.content
    assert b"<html" in restore.content and b"<html" in full.content


async def test_hostile_names_data_and_reasons_render_as_text(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(
        redis_url, "email", [(HOSTILE, {"html": "<script>alert(2)</script>"}, {"jobId": "x", "attempts": 1})]
    )

    async def fail(job, token):
        raise ValueError(HOSTILE)

    await process(redis_url, "email", fail, until=1)
    pages = [
        await client.get(links.queue_url(EMAIL) + "?state=failed"),
        await client.get(links.job_url(EMAIL, "x")),
    ]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200
        assert "<img src=x" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<script>alert(2)" not in html
    api = await client.get(links.job_api_url(EMAIL, "x"))
    assert api["Content-Type"] == "application/json"
    assert api.json()["name"] == HOSTILE


@pytest.mark.parametrize(
    "job_id",
    [
        "repeat:hourly:1795849200000",
        "weird/id with space#hash?q=1&x ü 🚀",
        "a%2Fb",
        "trailing/",
        "../../actions/drain/",
        "a/../../x",
        "..",
        "+plus&amp=;",
    ],
)
async def test_arbitrary_job_ids_round_trip_through_urls(
    client: AsyncClient, redis_url: str, job_id: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {"ok": True}, {"jobId": job_id})])
    url = links.job_url(EMAIL, job_id)
    # The id is one percent-encoded query value; the path is the same for every job.
    assert url.startswith(links.queue_url(EMAIL) + "job/?id=") and "#" not in url and url.count("?") == 1
    # Through the ASGI app as daphne calls it: Django's AsyncClient decodes paths as Latin-1.
    status, body = await asgi_get(client, url)
    assert status == 200
    assert escape(job_id).encode() in body
    status, body = await asgi_get(client, links.job_api_url(EMAIL, job_id))
    assert json.loads(body)["id"] == job_id
    listing = await client.get(links.queue_url(EMAIL))
    assert f'href="{escape(url)}"'.encode() in listing.content


async def test_job_page_shows_logs_traces_newest_first_and_return_value(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(
        redis_url,
        "email",
        [("send", {"n": 1}, {"jobId": "ok"}), ("send", {"n": 2}, {"jobId": "bad", "attempts": 2})],
    )
    attempts: dict[str, int] = {}

    async def work(job, token):
        await job.log(f"line for {job.id}")
        if job.id == "bad":
            attempts[job.id] = attempts.get(job.id, 0) + 1
            raise RuntimeError(f"attempt {attempts[job.id]} broke")
        return {"delivered": True}

    await process(redis_url, "email", work, until=2)
    ok = (await client.get(links.job_url(EMAIL, "ok"))).content.decode()
    assert "&quot;delivered&quot;: true" in ok
    assert "line for ok" in ok
    bad = (await client.get(links.job_url(EMAIL, "bad"))).content.decode()
    assert bad.index("attempt 2 broke") < bad.index("attempt 1 broke")
    assert "2 made of 2 allowed" in bad


async def test_log_pager_swaps_a_partial(client: AsyncClient, redis_url: str, settings) -> None:
    settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "LOG_PAGE_SIZE": 10}
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "chatty"})])

    async def chatty(job, token):
        for index in range(25):
            await job.log(f"log line {index}")

    await process(redis_url, "email", chatty, until=1)
    url = links.logs_url(EMAIL, "chatty")
    partial = await client.get(url + "&log_page=3", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"log line 20" in partial.content and b"log line 19" not in partial.content
    assert b"<html" not in partial.content
    direct = await client.get(url + "&log_page=3")
    assert direct.status_code == 302


async def test_huge_data_is_cut_inside_redis_and_linked_raw(client: AsyncClient, redis_url: str) -> None:
    big = "x" * (2 * 1024 * 1024)
    await add_jobs(redis_url, "email", [("send", {"blob": big}, {"jobId": "big"})])

    page = await client.get(links.job_url(EMAIL, "big"))
    assert page.status_code == 200
    assert len(page.content) < 150_000
    assert b"Open the full value" in page.content
    api = await client.get(links.job_api_url(EMAIL, "big"))
    assert len(api.content) < 150_000
    assert api.json()["truncated"]["data"]["size"] == len(big) + len('{"blob":""}')
    raw = await client.get(links.raw_field_url(EMAIL, "big", "data"))
    assert raw.status_code == 200
    assert raw["Content-Type"].startswith("text/plain")
    assert len(raw.content) == len(big) + len('{"blob":""}')


async def test_malformed_job_hashes_render_without_error(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    # Written raw on purpose: other programs can leave hashes BullMQ itself would never write.
    await redis_client.hset(
        "bull:email:broken",
        mapping={
            "name": b"\xff\xfe bad \xc3(",
            "data": b'{"unterminated": ',
            "opts": b"not json",
            "timestamp": b"yesterday",
            "progress": b"{bad",
            "stacktrace": b"[1, 2",
            "returnvalue": b"\x80\x81",
            "custom": b"kept visible",
        },
    )
    await redis_client.lpush("bull:email:wait", "broken")
    await redis_client.hset("bull:email:empty", "x", "1")
    await redis_client.lpush("bull:email:wait", "empty")
    await redis_client.lpush("bull:email:wait", "vanished")  # an id whose hash is gone

    listing = await client.get(links.queue_url(EMAIL))
    assert listing.status_code == 200
    assert "\ufffd bad".encode() in listing.content
    # As Node's getJobs: a hash without any listed field is a row, a missing hash is skipped.
    assert b'data-job-id="empty"' in listing.content
    assert b'data-job-id="vanished"' not in listing.content
    page = await client.get(links.job_url(EMAIL, "broken"))
    assert page.status_code == 200
    api = await client.get(links.job_api_url(EMAIL, "broken"))
    assert api.status_code == 200
    # A hash without BullMQ's timestamp is not a job: its row says so and its page is a 404.
    assert b"no timestamp field" in listing.content
    assert (await client.get(links.job_url(EMAIL, "empty"))).status_code == 404
    assert (await client.get(links.job_api_url(EMAIL, "empty"))).status_code == 404
    detail = (await client.get(links.job_api_url(EMAIL, "broken"))).json()
    assert detail["data"] == '{"unterminated": '
    assert detail["extra"] == {"custom": "kept visible"}


async def test_flow_parent_and_children_link_each_other(client: AsyncClient, redis_url: str) -> None:
    from bullmq import FlowProducer

    flow = FlowProducer({"connection": redis_url})
    try:
        await flow.add(
            {
                "name": "build-report",
                "queueName": "reports",
                "data": {},
                "opts": {"jobId": "parent-1"},
                "children": [
                    {"name": "render", "queueName": "pages", "data": {"p": i}, "opts": {"jobId": f"c{i}"}}
                    for i in range(2)
                ],
            }
        )
    finally:
        await flow.close()
    reports = QueueRef("default", "bull", "reports")
    pages = QueueRef("default", "bull", "pages")
    await client.get(dashboard_url())  # discovery sees both queues
    parent = (await client.get(links.job_url(reports, "parent-1"))).content.decode()
    assert "waiting-children" in parent
    assert f'href="{links.job_url(pages, "c0")}"' in parent
    child = (await client.get(links.job_url(pages, "c1"))).content.decode()
    assert f'href="{links.job_url(reports, "parent-1")}"' in child


async def test_redis_down_is_a_503_page_and_recovers(client: AsyncClient, settings) -> None:
    server = ThrowawayRedis().start()
    try:
        settings.BULLMQ_DASHBOARD = {"CONNECTIONS": {"default": {"URL": server.url, "CONNECT_TIMEOUT": 0.5}}}
        await add_jobs(server.url, "email", [("send", {}, {})])
        assert (await client.get(dashboard_url())).status_code == 200
        server.stop()
        down = await client.get(links.queue_url(EMAIL))
        assert down.status_code == 503
        assert b"Redis is unreachable" in down.content and b"Traceback" not in down.content
        api_down = await client.get(dashboard_url("api/queues/"))
        assert api_down.status_code == 503 and api_down.json()["status"] == 503
        server.start()  # same port, empty data: the next request works without a restart
        recovered = await client.get(dashboard_url())
        assert recovered.status_code == 200
    finally:
        server.stop()


async def test_page_views_after_the_first_do_not_scan(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await client.get(dashboard_url())
    await redis_client.config_resetstat()
    for _ in range(3):
        await client.get(dashboard_url())
        await client.get(links.queue_url(EMAIL))
    stats = await redis_client.info("commandstats")
    assert "cmdstat_scan" not in stats and "cmdstat_keys" not in stats
    # a queue page without ?state= runs one script (its counts, then the page of the state it opens
    # on); overviews add none (see the next test), though the events watcher they lease may count
    # once in the background
    assert 3 * 1 <= stats["cmdstat_evalsha"]["calls"] <= 3 * 1 + 2


async def test_overview_counts_stay_current_without_rereading_quiet_queues(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    await client.get(dashboard_url())
    await redis_client.config_resetstat()
    one_waiting = r'data-queue="bull:email" data-state="waiting">\s*<a[^>]*>1</a>'
    for _ in range(5):
        page = await client.get(dashboard_url())
        assert re.search(one_waiting, page.content.decode())
    assert "cmdstat_evalsha" not in await redis_client.info("commandstats")

    await add_jobs(redis_url, "email", [("send", {}, {})])  # its events stream tells the watcher
    for _ in range(50):
        html = (await client.get(dashboard_url())).content.decode()
        if re.search(r'data-queue="bull:email" data-state="waiting">\s*<a[^>]*>2</a>', html):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the overview never showed the new job")
    assert re.search(r'data-queue="bull:sms" data-state="waiting">\s*<a[^>]*>1</a>', html)


async def test_open_a_job_by_id_from_the_queue_page(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "order:42/retry"})])
    page = await client.get(links.queue_url(EMAIL))
    assert (
        b'name="q" maxlength="200" data-search-box' in page.content
    )  # the page's box searches; an exact id comes first
    searched = await client.get(links.search_url(EMAIL) + "?q=order%3A42%2Fretry")
    assert b"data-exact-match" in searched.content
    assert escape(links.job_url(EMAIL, "order:42/retry")).encode() in searched.content
    found = await client.get(
        reverse("bullmq_dashboard:find-job", args=["default", "bull:email"]), {"id": "order:42/retry"}
    )
    assert found.status_code == 302 and found["Location"] == links.job_url(EMAIL, "order:42/retry")
    missing = await client.get(
        reverse("bullmq_dashboard:find-job", args=["default", "bull:email"]), {"id": "nope"}
    )
    assert missing.status_code == 404 and b"No job" in missing.content
    empty = await client.get(reverse("bullmq_dashboard:find-job", args=["default", "bull:email"]))
    assert empty.status_code == 400


async def test_job_rows_show_what_changed_and_what_the_user_may_do(
    client: AsyncClient, admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "r1"})])
    reasons = iter(["first reason", "second reason"])

    async def fail(job, token):
        raise RuntimeError(next(reasons))

    await process(redis_url, "email", fail, until=1)
    failed = links.queue_url(EMAIL) + "?state=failed"
    assert "first reason" in (await admin_client.get(failed)).content.decode()
    retry = links.job_action_url(EMAIL, "retry", "r1")
    assert (await admin_client.post(retry, HTTP_ACCEPT="application/json")).status_code == 200
    await process(redis_url, "email", fail, until=1)

    admin_html = (await admin_client.get(failed)).content.decode()
    assert "second reason" in admin_html and "first reason" not in admin_html
    assert f'hx-post="{retry}"' in admin_html
    staff_html = (await client.get(failed)).content.decode()
    assert "second reason" in staff_html and f'hx-post="{retry}"' not in staff_html


async def test_paging_swaps_only_the_list_and_moves_the_refresh(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}) for _ in range(30)])
    url = links.queue_url(EMAIL) + "?state=waiting&per_page=10&page=2"
    html = (await client.get(url, headers={"HX-Request": "true", "HX-Target": "job-list"})).content.decode()
    assert html.startswith('<div id="job-list"'), html[:200]
    assert 'id="queue-body"' not in html
    assert 'class="tabs"' not in html and "live-socket" in html
    refresh = re.search(r'<div id="queue-refresh" hx-get="([^"]+)"[^>]*hx-swap-oob="true"', html)
    assert refresh is not None and refresh.group(1).replace("&amp;", "&") == url
    body = (await client.get(url, headers={"HX-Request": "true"})).content.decode()
    assert 'id="queue-body"' in body and 'class="tabs"' in body and "hx-swap-oob" not in body


async def test_a_legacy_wait_marker_is_neither_counted_nor_listed(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"m{i}"}) for i in range(3)])
    # Written raw on purpose: BullMQ < 5 left a "0:<timestamp>" marker at the tail of wait (and had no
    # `marker` key, which BullMQ 5 and the Python package write).
    await redis_client.delete("bull:email:marker")
    await redis_client.rpush("bull:email:wait", "0:1700000000000")
    counts = (await client.get(links.queue_api_url(EMAIL))).json()["counts"]
    page = (await client.get(links.jobs_api_url(EMAIL) + "?state=waiting")).json()
    assert counts["waiting"] == 3 and page["total"] == 3
    assert sorted(job["id"] for job in page["jobs"]) == ["m0", "m1", "m2"]


async def test_any_page_size_up_to_the_maximum(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {"i": i}, {}) for i in range(30)])
    html = (await client.get(links.queue_url(EMAIL) + "?per_page=7")).content.decode()
    assert html.count('class="job-row"') == 7
    assert '<option value="7" selected>7</option>' in html  # the selector shows the size asked for
    answer = json.loads((await client.get(links.jobs_api_url(EMAIL) + "?per_page=20")).content)
    assert answer["per_page"] == 20 and len(answer["jobs"]) == 20 and answer["pages"] == 2


async def test_object_progress_is_shown_as_json(client: AsyncClient, redis_url: str) -> None:
    queue = Queue("email", {"connection": redis_url})
    try:
        job = await queue.add("send", {}, {"jobId": "p1"})
        await job.updateProgress({"step": "smtp", "pct": 50, "ok": True})
    finally:
        await queue.close()
    shown = escape('{"step": "smtp", "pct": 50, "ok": true}')
    listed = (await client.get(links.queue_url(EMAIL))).content.decode()
    page = (await client.get(links.job_url(EMAIL, "p1"))).content.decode()
    assert shown in listed and "{'step'" not in escape(listed) and "&#x27;step&#x27;" not in listed
    assert escape('"step": "smtp"') in page and "&#x27;step&#x27;" not in page
    api = json.loads((await client.get(links.job_api_url(EMAIL, "p1"))).content)
    assert api["progress"] == {"step": "smtp", "pct": 50, "ok": True}
