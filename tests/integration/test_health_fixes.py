"""The fixes the health panel offers next to their causes (issue 15, point 3): change the global
concurrency, release the rate limit, promote the oldest delayed job, look up and release a
deduplication id. What each changes in Redis, what each refuses (and then leaves exactly as it was),
what each audits; the lookup's JSON and page; the buttons each health reason shows, and to whom."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.template.loader import render_to_string
from django.test import AsyncClient
from django.utils.html import escape
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.health import Reason, ReasonCode, Severity
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from tests.support.builders import add_jobs
from tests.support.snapshot import snapshot

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
FIXES = ("set_global_concurrency", "remove_rate_limit_key", "promote_oldest_delayed", "release_deduplication")
PARAMS: dict[str, dict[str, Any]] = {
    "set_global_concurrency": {"concurrency": 3},
    "release_deduplication": {"dedup_id": "report-42"},
}


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.post(url, data=json.dumps(params), content_type="application/json")
    await wait_all()
    return response


async def last_audit() -> AuditEntry:
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    return entry


@pytest.fixture
async def seeded(redis_url: str, redis_client: Redis) -> dict[bytes, bytes | None]:
    """A queue at a global concurrency of 2, rate-limited, with two delayed jobs and a job holding the
    deduplication id `report-42`."""
    await add_jobs(
        redis_url,
        "email",
        [
            ("send", {}, {"jobId": "late", "delay": 3_600_000}),
            ("send", {}, {"jobId": "soon", "delay": 600_000}),
            ("report", {}, {"jobId": "r1", "delay": 7_200_000, "deduplication": {"id": "report-42"}}),
        ],
    )
    await redis_client.hset("bull:email:meta", "concurrency", 2)
    await redis_client.set("bull:email:limiter", 1, px=60_000)
    return await snapshot(redis_client)


# ---- what each does ----


async def test_set_and_remove_the_global_concurrency(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    url = links.queue_action_url(EMAIL, "set_global_concurrency")
    response = await post(admin_client, url, concurrency=5)
    assert response.status_code == 200, response.json()
    assert response.json()["message"] == "Global concurrency of queue email set to 5."
    assert await redis_client.hget("bull:email:meta", "concurrency") == b"5"
    entry = await last_audit()
    assert (entry.action, entry.result, entry.params) == (
        "set_global_concurrency",
        "done",
        {"concurrency": 5},
    )

    form = await admin_client.post(url, {"concurrency": "7"})  # the health panel's form
    await wait_all()
    assert form.status_code == 200 and await redis_client.hget("bull:email:meta", "concurrency") == b"7"

    removed = await post(admin_client, url, concurrency=0)
    assert removed.status_code == 200 and removed.json()["done"] == 1
    assert await redis_client.hexists("bull:email:meta", "concurrency") == 0
    again = await post(admin_client, url, concurrency="")
    assert again.status_code == 200 and again.json()["done"] == 0
    assert "no global concurrency" in again.json()["message"]


@pytest.mark.parametrize("value", [-1, "abc", "2.5", 1_000_001, True, [3], {"n": 3}])
async def test_a_bad_concurrency_is_a_400_and_changes_nothing(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any, value: Any
) -> None:
    response = await post(
        admin_client, links.queue_action_url(EMAIL, "set_global_concurrency"), concurrency=value
    )
    assert response.status_code == 400, response.json()
    assert await snapshot(redis_client) == seeded
    assert (await last_audit()).result == "invalid"


async def test_release_the_rate_limit_now(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    url = links.queue_action_url(EMAIL, "remove_rate_limit_key")
    response = await post(admin_client, url)
    assert response.status_code == 200
    assert response.json()["done"] == 1 and "released" in response.json()["message"]
    assert await redis_client.exists("bull:email:limiter") == 0
    again = await post(admin_client, url)
    assert again.status_code == 200 and again.json()["done"] == 0
    assert "not rate-limited" in again.json()["message"]
    assert (await last_audit()).action == "remove_rate_limit_key"


async def test_promote_the_delayed_job_due_first(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    url = links.queue_action_url(EMAIL, "promote_oldest_delayed")
    response = await post(admin_client, url)
    assert response.status_code == 200, response.json()
    assert response.json()["message"] == "Job soon, the delayed job due first, promoted to waiting."
    assert await redis_client.lrange("bull:email:wait", 0, -1) == [b"soon"]
    assert await redis_client.zrange("bull:email:delayed", 0, -1) == [b"late", b"r1"]
    entry = await last_audit()
    assert (entry.action, entry.job_ids) == ("promote_oldest_delayed", ["soon"])
    await post(admin_client, url)
    await post(admin_client, url)
    none_left = await post(admin_client, url)
    assert none_left.status_code == 409 and "no delayed jobs" in none_left.json()["message"]


async def test_promote_oldest_refuses_a_delayed_entry_that_is_no_job(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    # Malformed data: the delayed set's first member names the queue's own `meta` key, then one that is
    # not UTF-8 (its text would name another key).
    await redis_client.zadd("bull:email:delayed", {"meta": 1})
    before = await snapshot(redis_client)
    url = links.queue_action_url(EMAIL, "promote_oldest_delayed")
    response = await post(admin_client, url)
    assert response.status_code == 404 and "own keys" in response.json()["message"]
    await redis_client.zadd("bull:email:delayed", {b"\xff\xfe": 0})
    broken = await post(admin_client, url)
    assert broken.status_code == 409 and "not valid UTF-8" in broken.json()["message"]
    await redis_client.zrem("bull:email:delayed", b"\xff\xfe")
    assert await snapshot(redis_client) == before


async def test_release_a_deduplication_id(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, seeded: Any
) -> None:
    looked = (await admin_client.get(links.dedup_api_url(EMAIL, "report-42"))).json()
    assert looked["status"] == "held"
    assert looked["job"] == {
        "id": "r1",
        "state": "delayed",
        "exact": True,
        "html_url": links.job_url(EMAIL, "r1"),
        "api_url": links.job_api_url(EMAIL, "r1"),
    }
    assert looked["ttl_ms"] is None
    assert looked["release_url"] == links.queue_action_url(EMAIL, "release_deduplication")

    response = await post(admin_client, looked["release_url"], dedup_id="report-42")
    assert response.status_code == 200, response.json()
    assert "released from job r1" in response.json()["message"]
    assert await redis_client.exists("bull:email:de:report-42") == 0
    assert await redis_client.exists("bull:email:r1") == 1
    entry = await last_audit()
    assert (entry.action, entry.result, entry.params) == (
        "release_deduplication",
        "done",
        {"dedup_id": "report-42"},
    )

    # The next job added with the id is kept, and holds it now.
    await add_jobs(
        redis_url, "email", [("report", {}, {"jobId": "r2", "deduplication": {"id": "report-42"}})]
    )
    assert await redis_client.get("bull:email:de:report-42") == b"r2"
    gone = await post(admin_client, looked["release_url"], dedup_id="nobody-holds-this")
    assert gone.status_code == 409 and "No job holds" in gone.json()["message"]


async def test_a_released_id_sent_back_by_the_form_keeps_its_line_breaks(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    odd = "line one\r\nline two\n* ü"
    await add_jobs(
        redis_url, "email", [("report", {}, {"jobId": "r9", "delay": 60_000, "deduplication": {"id": odd}})]
    )
    page = (await admin_client.get(links.dedup_lookup_url(EMAIL, odd))).content.decode()
    assert f'name="dedup_id_quoted" value="{quote(odd, safe="")}"' in page
    response = await admin_client.post(
        links.queue_action_url(EMAIL, "release_deduplication"), {"dedup_id_quoted": quote(odd, safe="")}
    )
    await wait_all()
    assert response.status_code == 200, response.json()
    assert await redis_client.exists(f"bull:email:de:{odd}") == 0


@pytest.mark.parametrize(
    ("dedup_id", "status"),
    [
        ("", 400),
        ("x" * 1025, 400),
        ("ü" * 513, 400),  # 1026 bytes
        ("*", 409),  # a literal id: never a pattern
        ("report-*", 409),
        ("../report-42", 409),
        ("report-42\x00", 409),
    ],
)
async def test_hostile_deduplication_ids_release_nothing(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any, dedup_id: str, status: int
) -> None:
    response = await post(
        admin_client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id=dedup_id
    )
    assert response.status_code == status, response.json()
    assert await snapshot(redis_client) == seeded


async def test_a_quoted_id_that_is_not_utf8_is_a_400(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    response = await admin_client.post(
        links.queue_action_url(EMAIL, "release_deduplication"), {"dedup_id_quoted": "%FF%FE"}
    )
    await wait_all()
    assert response.status_code == 400 and "UTF-8" in response.json()["message"]
    assert await snapshot(redis_client) == seeded


async def test_ids_that_name_another_queues_keys_are_left_alone(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, seeded: Any
) -> None:
    # Two real queues whose keys sit in `bull:email:de:…`: queue `x` of prefix `bull:email:de`, and
    # queue `de` of prefix `bull:email`. Their string keys (`id` counters) must not be released as
    # deduplication ids of bull:email.
    await add_jobs(redis_url, "x", [("nested", {}, {})], prefix="bull:email:de")
    await add_jobs(redis_url, "de", [("nested", {}, {})], prefix="bull:email")
    before = await snapshot(redis_client)
    assert await redis_client.type("bull:email:de:x:id") == b"string"
    assert await redis_client.type("bull:email:de:id") == b"string"
    for hostile in ("x:id", "id", "x:meta", "x:events"):
        looked = (await admin_client.get(links.dedup_api_url(EMAIL, hostile))).json()
        assert looked["status"] == "foreign", (hostile, looked)
        assert looked["job"] is None and looked["release_url"] is None
        response = await post(
            admin_client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id=hostile
        )
        assert response.status_code == 409, (hostile, response.json())
    assert await snapshot(redis_client) == before


async def test_a_key_naming_a_job_not_added_with_the_id_is_left_alone(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    # Malformed data: a string key in the `de:` namespace naming a job that was added without it, one
    # too long to be a job id, and one of another type.
    await redis_client.set("bull:email:de:forged", "late")
    await redis_client.set("bull:email:de:huge", "j" * 20_000)
    await redis_client.rpush("bull:email:de:list", "late")
    before = await snapshot(redis_client)
    expected = {"forged": "other-job", "huge": "too-long", "list": "foreign"}
    for dedup_id, status in expected.items():
        looked = (await admin_client.get(links.dedup_api_url(EMAIL, dedup_id))).json()
        assert looked["status"] == status and looked["release_url"] is None
        response = await post(
            admin_client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id=dedup_id
        )
        assert response.status_code == 409
    assert await snapshot(redis_client) == before


async def test_an_id_left_by_a_removed_job_can_be_released(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any
) -> None:
    # A deduplication id whose job is gone (BullMQ keeps the key until its ttl when the job was removed
    # by hand): written by hand, as no BullMQ call leaves it.
    await redis_client.set("bull:email:de:orphan", "removed-long-ago", px=600_000)
    looked = (await admin_client.get(links.dedup_api_url(EMAIL, "orphan"))).json()
    assert looked["status"] == "gone" and looked["job"]["id"] == "removed-long-ago"
    assert "html_url" not in looked["job"] and 0 < looked["ttl_ms"] <= 600_000
    response = await post(admin_client, looked["release_url"], dedup_id="orphan")
    assert response.status_code == 200
    assert await redis_client.exists("bull:email:de:orphan") == 0


# ---- the lookup ----


async def test_the_lookup_page_escapes_the_id_and_offers_release_only_when_allowed(
    client: AsyncClient, admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    hostile = '<img src=x onerror=alert(1)>"'
    await add_jobs(
        redis_url, "email", [("r", {}, {"jobId": "h1", "delay": 60_000, "deduplication": {"id": hostile}})]
    )
    page = (await admin_client.get(links.dedup_lookup_url(EMAIL, hostile))).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert links.job_url(EMAIL, "h1") in page and "data-dedup-release" in page
    staff = await client.get(links.dedup_lookup_url(EMAIL, hostile))
    assert staff.status_code == 200
    assert (
        links.job_url(EMAIL, "h1") in staff.content.decode()
        and "data-dedup-release" not in staff.content.decode()
    )
    assert (await client.get(links.dedup_api_url(EMAIL, hostile))).json()["release_url"] is None
    empty = await admin_client.get(links.dedup_lookup_url(EMAIL))
    assert empty.status_code == 200 and 'name="id"' in empty.content.decode()
    partial = await admin_client.get(links.dedup_lookup_url(EMAIL, hostile), headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div class="dedup-lookup"')


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 400), ("?id=", 400), ("?id=a&id=b", 400), ("?id=%FF", 400), ("?id=" + "x" * 1025, 400)],
)
async def test_the_lookup_api_refuses_bad_ids(
    admin_client: AsyncClient, redis_url: str, query: str, status: int
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    head = links.dedup_api_url(EMAIL, "x").split("?")[0]
    response = await admin_client.get(head + query)
    assert response.status_code == status


async def test_the_lookup_is_a_404_for_unknown_queues_and_a_401_for_anonymous(
    admin_client: AsyncClient, anonymous_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    nowhere = QueueRef("default", "bull", "nowhere")
    assert (await admin_client.get(links.dedup_api_url(nowhere, "x"))).status_code == 404
    assert (await anonymous_client.get(links.dedup_api_url(EMAIL, "x"))).status_code == 401


# ---- who may ----


@pytest.mark.parametrize("name", FIXES)
async def test_staff_without_the_permission_is_refused_and_audited(
    client: AsyncClient, redis_client: Redis, seeded: Any, name: str
) -> None:
    response = await post(client, links.queue_action_url(EMAIL, name), **PARAMS.get(name, {}))
    assert response.status_code == 403
    assert await snapshot(redis_client) == seeded
    entry = await last_audit()
    assert (entry.action, entry.result) == (name, "refused")


@pytest.mark.parametrize(
    ("name", "codename"),
    [
        ("set_global_concurrency", "set_global_concurrency"),
        ("remove_rate_limit_key", "release_rate_limit"),
        ("promote_oldest_delayed", "promote_oldest_delayed"),
        ("release_deduplication", "release_deduplication"),
    ],
)
async def test_its_own_permission_allows_exactly_that_fix(
    client: AsyncClient, staff_user: Any, redis_client: Redis, seeded: Any, name: str, codename: str
) -> None:
    permission = await Permission.objects.aget(codename=codename, content_type__app_label="bullmq_dashboard")
    await staff_user.user_permissions.aadd(permission)
    actions = (await client.get(links.queue_api_url(EMAIL))).json()["actions"]
    assert set(actions) == {name}
    response = await post(client, actions[name], **PARAMS.get(name, {}))
    assert response.status_code == 200, response.json()
    assert await snapshot(redis_client) != seeded
    others = [other for other in FIXES if other != name]
    for other in others:
        assert (
            await post(client, links.queue_action_url(EMAIL, other), **PARAMS.get(other, {}))
        ).status_code == 403


@pytest.mark.parametrize("name", FIXES)
async def test_read_only_refuses(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any, settings: Any, name: str
) -> None:
    settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "READ_ONLY_QUEUES": ["bull:email"]}
    response = await post(admin_client, links.queue_action_url(EMAIL, name), **PARAMS.get(name, {}))
    assert response.status_code == 403 and "read-only" in response.json()["message"]
    assert await snapshot(redis_client) == seeded
    assert (await admin_client.get(links.dedup_api_url(EMAIL, "report-42"))).json()["release_url"] is None


@pytest.mark.parametrize("name", FIXES)
async def test_csrf_and_get_are_refused(superuser: Any, redis_client: Redis, seeded: Any, name: str) -> None:
    strict = AsyncClient(enforce_csrf_checks=True)
    await strict.aforce_login(superuser)
    url = links.queue_action_url(EMAIL, name)
    no_token = await strict.post(url, PARAMS.get(name, {}))
    await wait_all()
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["message"]
    fetched = await strict.get(url)
    assert fetched.status_code == 405 and fetched["Allow"] == "POST"
    assert await snapshot(redis_client) == seeded


# ---- the buttons next to each reason ----


def render_fix(code: ReasonCode, actions: dict[str, str] | None, value: Any = None, delayed: int = 0) -> str:
    reason = Reason(code, gettext_lazy("a reason"), None, value, Severity.STUCK)
    context: dict[str, Any] = {"reason": reason, "queue": EMAIL}
    if actions is not None:  # the page's context; a push has neither actions nor counts
        context.update(actions=actions, counts=QueueCounts(EMAIL, {"delayed": delayed}, paused=False))
    return render_to_string("bullmq_dashboard/partials/health_fix.html", context)


async def test_each_reason_shows_its_fix_to_those_who_may_take_it(redis_url: str) -> None:
    every = {name: links.queue_action_url(EMAIL, name) for name in ("resume", *FIXES)}
    paused = render_fix(ReasonCode.PAUSED, every)
    assert f'hx-post="{every["resume"]}"' in paused
    capped = render_fix(ReasonCode.AT_CAPACITY, every, value=5)
    assert f'hx-post="{every["set_global_concurrency"]}"' in capped and 'value="5"' in capped
    limited = render_fix(ReasonCode.RATE_LIMITED, every, value=41_000)
    assert f'hx-post="{every["remove_rate_limit_key"]}"' in limited and "data-confirm=" in limited
    stalled = render_fix(ReasonCode.STALLED, every, value=9)
    assert (
        escape(links.queue_list_url(EMAIL, "waiting")) in stalled
        and escape(links.queue_list_url(EMAIL, "failed")) in stalled
    )
    old = render_fix(ReasonCode.OLDEST_WAITING, every, value=7200, delayed=2)
    assert f'hx-post="{every["promote_oldest_delayed"]}"' in old
    assert "promote_oldest_delayed" not in render_fix(ReasonCode.OLDEST_WAITING, every, value=7200)
    dedup = render_fix(ReasonCode.DEDUPLICATED, every, value=3)
    assert f'action="{links.dedup_lookup_url(EMAIL)}"' in dedup
    child = render_fix(ReasonCode.CHILDREN_STUCK, every, value="bull:payments")
    assert links.queue_url(QueueRef("default", "bull", "payments")) + "#health" in child
    assert "href" not in render_fix(ReasonCode.CHILDREN_STUCK, every, value="no-colon")
    assert links.workers_url(EMAIL) in render_fix(ReasonCode.NO_WORKERS, every)

    for code in ReasonCode:
        # Without the permissions (or on a read-only queue: `actions` is empty) only the links remain.
        html = render_fix(code, {}, value=1, delayed=2)
        assert "hx-post" not in html and "hx-get=" not in html.split(">")[0], code
        # Pushed (no one's actions): no buttons; the fix keeps the page's element, or loads its own.
        pushed = render_fix(code, None, value=1)
        head = pushed.split(">")[0]
        assert "hx-post" not in pushed and "hx-preserve" in head and 'id="health-fix-' in head, code
        assert f'hx-get="{escape(links.health_fix_url(EMAIL, code, 1))}"' in head, code


async def test_a_pushed_fix_loads_the_buttons_of_the_user_who_asks(
    client: AsyncClient, admin_client: AsyncClient, redis_url: str, redis_client: Redis, settings: Any
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("send", {}, {"jobId": "d1", "delay": 60_000})])
    await redis_client.hset("bull:email:meta", "paused", 1)
    paused = links.health_fix_url(EMAIL, "paused", 1)
    inner = (await admin_client.get(paused, headers={"HX-Request": "true"})).content.decode()
    assert f'hx-post="{links.queue_action_url(EMAIL, "resume")}"' in inner
    assert "hx-preserve" not in inner  # the content alone: it fills the pushed element
    assert "hx-post" not in (await client.get(paused)).content.decode()
    capped = (await admin_client.get(links.health_fix_url(EMAIL, "at_capacity", 4))).content.decode()
    assert 'name="concurrency"' in capped and 'value="4"' in capped
    old = (await admin_client.get(links.health_fix_url(EMAIL, "oldest_waiting", 900))).content.decode()
    assert links.queue_action_url(EMAIL, "promote_oldest_delayed") in old
    hostile = (await admin_client.get(links.health_fix_url(EMAIL, "children_stuck", '"><b>x'))).content
    assert b"<b>x" not in hostile
    assert (await admin_client.get(links.health_fix_url(EMAIL, "nonsense"))).status_code == 400
    assert (await admin_client.get(links.health_fix_url(EMAIL, "paused", "9" * 3000))).status_code == 400
    settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "READ_ONLY": True}
    assert "hx-post" not in (await admin_client.get(paused)).content.decode()


async def test_the_page_after_a_fix_shows_the_health_it_left(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    await redis_client.set("bull:email:limiter", 1, px=60_000)
    before = (await admin_client.get(links.queue_url(EMAIL))).content.decode()
    assert 'data-reason="rate_limited"' in before and 'data-fix="remove_rate_limit_key"' in before
    await post(admin_client, links.queue_action_url(EMAIL, "remove_rate_limit_key"))
    # Within the verdict's cache time: the action made the next page read the queue again.
    after = (await admin_client.get(links.queue_url(EMAIL), headers={"HX-Request": "true"})).content.decode()
    assert 'data-reason="rate_limited"' not in after
