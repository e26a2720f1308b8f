"""Job search (queues/search.py, dashboard/views/search.py) over queues the Python `bullmq` package
wrote: what it finds, in which order, within which bounds, and how it goes on from a cursor."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bullmq import Queue
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.search import SEARCH_ORDER, SearchLimits, SearchQuery, needles, search_jobs
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")


async def add_bulk(url: str, name: str, jobs: list[dict[str, Any]]) -> None:
    """Add many jobs at once (BullMQ's addBulk), in order: the last one is the newest."""
    queue = Queue(name, {"connection": url})
    try:
        for start in range(0, len(jobs), 1000):
            await queue.addBulk(jobs[start : start + 1000])
    finally:
        await queue.close()


async def search(client: AsyncClient, queue: QueueRef = EMAIL, **params: Any) -> Any:
    """The API answer of a search (asserting a 200)."""
    response = await client.get(
        links.search_api_url(queue), {k: v for k, v in params.items() if v is not None}
    )
    assert response.status_code == 200, response.content
    return response.json()


async def search_all(client: AsyncClient, **params: Any) -> tuple[list[str], list[Any]]:
    """Every match of a search, following next_cursor to the end; the ids and each step's answer."""
    ids: list[str] = []
    steps: list[Any] = []
    cursor = None
    while True:
        body = await search(client, cursor=cursor, **params)
        steps.append(body)
        ids.extend(job["id"] for job in body["jobs"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, steps
        assert len(steps) < 50


async def fail_some(job: Any, token: str) -> str:
    """A processor: jobs named `digest` fail with an SMTP error, the others complete."""
    if job.name == "digest":
        raise RuntimeError("SMTP timeout talking to mx.Example.org")
    return "ok"


async def test_text_is_found_in_name_data_and_failed_reason(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(
        redis_url,
        "email",
        [
            ("welcome", {"to": "alice@Example.com"}, {"jobId": "w1"}),
            ("invoice", {"customer": "Bob"}, {"jobId": "i1"}),
            ("digest", {"week": 12}, {"jobId": "d1"}),
        ],
    )
    await process(redis_url, "email", fail_some, until=3)
    await add_jobs(redis_url, "email", [("Quarterly-INVOICE", {"n": 1}, {"jobId": "i2"})])

    by_data = await search(client, q="ALICE@example")
    assert [(job["id"], job["state"]) for job in by_data["jobs"]] == [("w1", "completed")]
    by_name = await search(client, q="invoice")
    assert {job["id"] for job in by_name["jobs"]} == {"i1", "i2"}
    assert by_name["jobs"][0]["id"] == "i2"  # waiting is searched before completed
    by_reason = await search(client, q="smtp TIMEOUT")
    (failed,) = by_reason["jobs"]
    assert failed["id"] == "d1" and failed["state"] == "failed"
    assert failed["failedReason"].startswith("SMTP timeout") and failed["api_url"]
    assert by_reason["next_cursor"] is None and by_reason["bound_hit"] is False
    assert by_reason["scanned"] == 4 and by_reason["exact"] is None
    nothing = await search(client, q="no such text")
    assert nothing["jobs"] == [] and nothing["scanned"] == 4
    one_state = await search(client, q="invoice", state="completed")
    assert [job["id"] for job in one_state["jobs"]] == ["i1"] and one_state["states"] == ["completed"]


async def test_an_exact_id_is_named_first(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "order-7"}), ("send", {"ref": "order-7"}, {})])
    body = await search(client, q="order-7")
    assert body["exact"] == {
        "id": "order-7",
        "state": "waiting",
        "api_url": links.job_api_url(EMAIL, "order-7"),
    }
    page = await client.get(links.search_url(EMAIL), {"q": "order-7"})
    assert page.status_code == 200 and b"data-exact-match" in page.content
    assert links.job_url(EMAIL, "order-7").encode().replace(b"&", b"&amp;") in page.content
    # The queue's own key names are no job: no exact match, no error.
    assert (await search(client, q="meta"))["exact"] is None


async def test_each_state_is_searched_newest_first(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {"tag": "needle"}, {"jobId": f"n{i}"}) for i in range(5)])
    await add_jobs(
        redis_url,
        "email",
        [("send", {"tag": "needle"}, {"jobId": f"d{i}", "delay": 60_000 + i}) for i in range(3)],
    )
    body = await search(client, q="needle")
    assert [job["id"] for job in body["jobs"]] == ["n4", "n3", "n2", "n1", "n0", "d2", "d1", "d0"]
    assert [job["state"] for job in body["jobs"]] == ["waiting"] * 5 + ["delayed"] * 3
    # The same order as the queue page's list of each state.
    listed = (await client.get(links.jobs_api_url(EMAIL), {"state": "waiting"})).json()
    assert [job["id"] for job in listed["jobs"]] == ["n4", "n3", "n2", "n1", "n0"]


async def test_the_bound_stops_a_request_and_the_cursor_goes_on_exactly(
    client: AsyncClient, redis_url: str
) -> None:
    # 25,000 waiting jobs; every 1,000th (from the oldest, job 0) holds the text.
    jobs = [
        {
            "name": "send",
            "data": {"n": i, "tag": "needle" if i % 1000 == 0 else "hay"},
            "opts": {"jobId": f"j{i}"},
        }
        for i in range(25_000)
    ]
    await add_bulk(redis_url, "email", jobs)
    first = await search(client, q="needle", state="waiting")
    assert first["scanned"] == 10_000 and first["bound_hit"] is True and first["bound"] == 10_000
    assert first["next_cursor"] and first["next_url"]
    assert [job["id"] for job in first["jobs"]] == [f"j{i}" for i in range(24_000, 14_999, -1000)]
    ids, steps = await search_all(client, q="needle", state="waiting")
    assert ids == [f"j{i}" for i in range(24_000, -1, -1000)]  # newest first, none twice, none missed
    assert [step["scanned"] for step in steps] == [10_000, 10_000, 5_000]
    assert [step["scanned_total"] for step in steps] == [10_000, 20_000, 25_000]
    assert [step["bound_hit"] for step in steps] == [True, True, False]
    # The oldest job, found only by going on.
    assert "j0" not in [job["id"] for step in steps[:2] for job in step["jobs"]]
    # next_url is the same search with the cursor.
    query = parse_qs(urlsplit(first["next_url"]).query)
    assert (
        query["q"] == ["needle"]
        and query["state"] == ["waiting"]
        and query["cursor"] == [first["next_cursor"]]
    )


async def test_a_zset_cursor_survives_jobs_coming_and_going(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    # Delayed jobs, the newest (latest due) first; steps of 40 jobs.
    await add_bulk(
        redis_url,
        "email",
        [
            {"name": "send", "data": {"tag": "needle"}, "opts": {"jobId": f"z{i}", "delay": 100_000 + i * 10}}
            for i in range(200)
        ],
    )
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, SEARCH={"MAX_SCAN": 40, "BATCH": 15})
    ):
        first = await search(client, q="needle", state="delayed")
        assert [job["id"] for job in first["jobs"]] == [f"z{i}" for i in range(199, 159, -1)]
        # Meanwhile: the last job read is removed, newer ones are added, an older one is removed.
        await redis_client.zrem("bull:email:delayed", "z160", "z100")
        await add_jobs(
            redis_url,
            "email",
            [("send", {"tag": "needle"}, {"jobId": f"late{i}", "delay": 900_000 + i}) for i in range(3)],
        )
        rest: list[str] = []
        cursor = first["next_cursor"]
        while cursor:
            body = await search(client, q="needle", state="delayed", cursor=cursor)
            rest.extend(job["id"] for job in body["jobs"])
            cursor = body["next_cursor"]
            # A newer job between each two steps (the cursor's job stays: found by its rank).
            delay = 800_000 + len(rest)
            await add_jobs(
                redis_url, "email", [("send", {"tag": "needle"}, {"jobId": f"new{delay}", "delay": delay})]
            )
    assert rest == [f"z{i}" for i in range(159, -1, -1) if i != 100]


async def test_a_list_cursor_survives_new_jobs_and_workers_taking_old_ones(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_bulk(
        redis_url,
        "email",
        [{"name": "send", "data": {"tag": "needle"}, "opts": {"jobId": f"l{i}"}} for i in range(100)],
    )
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, SEARCH={"MAX_SCAN": 30, "BATCH": 7})
    ):
        first = await search(client, q="needle", state="waiting")
        assert [job["id"] for job in first["jobs"]] == [f"l{i}" for i in range(99, 69, -1)]
        # Meanwhile: new jobs at the head, and a worker takes the oldest from the tail.
        await add_jobs(
            redis_url, "email", [("send", {"tag": "needle"}, {"jobId": f"new{i}"}) for i in range(10)]
        )
        assert await redis_client.rpop("bull:email:wait") == b"l0"
        rest: list[str] = []
        cursor = first["next_cursor"]
        while cursor:
            body = await search(client, q="needle", state="waiting", cursor=cursor)
            rest.extend(job["id"] for job in body["jobs"])
            cursor = body["next_cursor"]
    assert rest == [f"l{i}" for i in range(69, 0, -1)]


async def test_name_and_time_filters(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(
        redis_url,
        "email",
        [
            ("send", {"n": 1}, {"jobId": "t1", "timestamp": 1_000_000}),
            ("send", {"n": 2}, {"jobId": "t2", "timestamp": 2_000_000}),
            ("send-later", {"n": 3}, {"jobId": "t3", "timestamp": 2_000_000}),
            ("send", {"n": 4}, {"jobId": "t4", "timestamp": 3_000_000}),
        ],
    )
    by_name = await search(client, name="send")
    assert [job["id"] for job in by_name["jobs"]] == ["t4", "t2", "t1"]
    in_range = await search(client, since="1500000", until="2500000")
    assert [job["id"] for job in in_range["jobs"]] == ["t3", "t2"]
    iso = await search(client, since="1970-01-01T00:33:20Z", until="1970-01-01T00:33:20")
    assert [job["id"] for job in iso["jobs"]] == ["t3", "t2"]
    both = await search(client, name="send", q="2", until="2000000")
    assert [job["id"] for job in both["jobs"]] == ["t2"]


async def test_finished_between_narrows_completed_and_failed(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("digest", {}, {"jobId": "f1"}), ("send", {}, {"jobId": "c1"})])
    await process(redis_url, "email", fail_some, until=2)
    detail = (await client.get(links.job_api_url(EMAIL, "f1"))).json()
    finished = detail["finishedOn"]
    hit = await search(client, state="failed", by="finished", since=str(finished), until=str(finished))
    assert [job["id"] for job in hit["jobs"]] == ["f1"]
    miss = await search(client, state="failed", by="finished", until=str(finished - 1))
    assert miss["jobs"] == [] and miss["scanned"] == 0  # the zset's scores bound the scan
    created = await search(client, state="completed", since=str(detail["timestamp"] - 60_000))
    assert [job["id"] for job in created["jobs"]] == ["c1"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": "x", "state": "bogus"}, "Unknown state"),
        ({"q": "x", "since": "yesterday"}, "ISO date"),
        ({"q": "x", "since": "2024-05-02", "until": "2024-05-01"}, "since is after until"),
        ({"q": "x", "by": "finished", "since": "1"}, "completed or failed"),
        ({"q": "x", "by": "sometime"}, "created or finished"),
        ({"q": "x", "cursor": "garbage"}, "not one this dashboard made"),
        ({}, "Give something to search for"),
        ({"q": "x" * 201}, "longer than"),
    ],
)
async def test_bad_parameters_are_a_400(
    client: AsyncClient, redis_url: str, params: dict[str, str], words: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    api = await client.get(links.search_api_url(EMAIL), params)
    assert api.status_code == 400 and words in api.json()["error"]
    if params:
        page = await client.get(links.search_url(EMAIL), params)
        assert page.status_code == 400 and words.encode() in page.content


async def test_a_cursor_is_only_good_for_its_own_search(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {"tag": "needle"}, {}) for _ in range(30)])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, SEARCH={"MAX_SCAN": 10})):
        first = await search(client, q="needle", state="waiting")
        cursor = first["next_cursor"]
        assert cursor and first["bound_hit"]
        other = await client.get(
            links.search_api_url(EMAIL), {"q": "other", "state": "waiting", "cursor": cursor}
        )
        assert other.status_code == 400 and "another search" in other.json()["error"]
        tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
        changed = await client.get(
            links.search_api_url(EMAIL), {"q": "needle", "state": "waiting", "cursor": tampered}
        )
        assert changed.status_code == 400
        same = await search(client, q="needle", state="waiting", cursor=cursor)
        assert same["scanned"] == 10 and same["scanned_total"] == 20


async def test_hostile_values_and_keys(client: AsyncClient, redis_url: str, redis_client: Redis) -> None:
    await add_jobs(
        redis_url,
        "email",
        [
            ("send", {"blob": "x" * (5 * 1024 * 1024) + "needle"}, {"jobId": "huge"}),
            ("send", {}, {"jobId": "bytes"}),
            ("send", {"tag": "needle"}, {"jobId": "fine"}),
        ],
    )
    await redis_client.hset("bull:email:bytes", "data", b'{"tag": "\xff\xfeneedle\x80"}')
    await redis_client.hset("bull:email:bytes", "name", b"\xc3\x28")
    # Keys of the wrong type in the state's list, a hash BullMQ did not write, a wrong-typed state key.
    await redis_client.set("bull:email:stringy", "needle")
    await redis_client.rpush("bull:email:listy", "needle")
    await redis_client.hset("bull:email:plain-hash", mapping={"data": "needle"})
    await redis_client.lpush("bull:email:wait", "stringy", "listy", "plain-hash")
    await redis_client.set("bull:email:prioritized", "not a zset")

    body = await search(client, q="NEEDLE")
    assert [job["id"] for job in body["jobs"]] == ["fine", "bytes"]
    assert body["not_searched"] == 1 and body["not_jobs"] == 3
    assert body["problems"] and "prioritized" in body["problems"][0]
    # The 5 MB value was never copied: what the request copied inside Redis is far below it.
    queue = QueueRef("default", "bull", "email")
    from dashboard.registry import client as redis_for

    result = await search_jobs(
        redis_for("default"), queue, SearchQuery(SEARCH_ORDER, "needle"), None, SearchLimits()
    )
    assert result.copied < 64 * 1024 and result.not_searched == 1
    page = await client.get(links.search_url(EMAIL), {"q": "needle"})
    assert page.status_code == 200 and b"not fully searched" in page.content


async def test_the_view_permission_holds(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {"tag": "needle"}, {})])
    await add_jobs(redis_url, "sms", [("send", {"tag": "needle"}, {})])
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        assert (await client.get(links.search_api_url(SMS), {"q": "needle"})).status_code == 404
        assert (await client.get(links.search_url(SMS), {"q": "needle"})).status_code == 404
        assert (await client.get(links.search_api_url(EMAIL), {"q": "needle"})).status_code == 200


async def test_the_page_and_the_queue_json(
    client: AsyncClient, admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {"tag": "needle"}, {"jobId": f"p{i}"}) for i in range(12)])
    detail = (await client.get(links.queue_api_url(EMAIL))).json()
    assert detail["search_url"] == links.search_api_url(EMAIL)
    empty = await client.get(links.search_url(EMAIL))
    assert (
        empty.status_code == 200
        and b'id="search-form"' in empty.content
        and b"data-search-summary" not in empty.content
    )
    assert b'aria-current="page">Search' in empty.content
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, SEARCH={"MAX_SCAN": 5})):
        viewer = await client.get(links.search_url(EMAIL), {"q": "needle", "state": "waiting"})
        assert viewer.status_code == 200 and b'name="ids"' not in viewer.content  # no action permission
        page = await admin_client.get(links.search_url(EMAIL), {"q": "needle", "state": "waiting"})
        assert page.status_code == 200
        assert b"Continue searching" in page.content and b"data-search-stopped" in page.content
        assert page.content.count(b'name="ids"') == 5  # one state: the rows can be selected
        everywhere = await admin_client.get(
            links.search_url(EMAIL), {"q": "needle"}, headers={"HX-Request": "true"}
        )
        assert b"data-bulk-note" in everywhere.content and b'name="ids"' not in everywhere.content
        assert b"<html" not in everywhere.content


def test_needles_are_lowered_as_redis_lowers_and_json_escaped() -> None:
    assert needles("ABC") == ["abc"]
    assert needles('Müller "x"') == ['müller "x"', 'm\\u00fcller \\"x\\"', 'müller \\"x\\"']
    assert needles("Ü") == ["Ü", "\\u00dc"]
    assert json.dumps("Ü") == '"\\u00dc"'
