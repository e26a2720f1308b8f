"""Job ids that are path tricks, written by real Node BullMQ, acted on by clicks in Chromium.

A browser resolves dot segments of a URL path before it sends it: a job id like
`../../actions/drain/` in a path would reach the drain endpoint. The dashboard puts ids in the query
string only; this checks what Chromium really sends, and with redis-py that only the clicked job moved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from tests.browser.conftest import ARTIFACTS, LiveSite, confirm_in_page, wait_until_listed
from tests.support.snapshot import Snapshot, changed, sync_snapshot

pytestmark = pytest.mark.browser

INTEROP = Path(__file__).resolve().parents[1] / "interop"
QUEUE = "browser-tricks"  # not a queue of build_state.mjs
KEY = f"bull:{QUEUE}"
PATH_TRICKS = ["../../actions/drain/", "a/../../x", "..", ".", "%2e%2e/", "x?y#z", "sp ace+&=", "ü🚀"]
WAITING = ["w1", "w2", "w3"]


@pytest.fixture(scope="module")
def tricks(live_site: LiveSite) -> dict[str, Any]:
    """bull:browser-tricks: the path-trick jobs failed by a Node worker, then w1..w3 waiting."""
    result = subprocess.run(
        ["node", "attack_state.mjs", live_site.redis_url, "--parts", "ids", "--ids-queue", QUEUE],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert built["ids"]["failed"] == PATH_TRICKS and built["ids"]["waiting"] == WAITING
    return built


def snapshot(client: redis.Redis) -> Snapshot:
    """Every key and its content, but BullMQ's self-expiring stalled-check keys."""
    return sync_snapshot(client, skip=lambda key: key.endswith(b":stalled-check"))


def row(page: Any, job_id: str) -> Any:
    assert '"' not in job_id and "\\" not in job_id
    return page.locator(f'tr.job-row[data-job-id="{job_id}"]')


def sent_id(url: str, action: str | None) -> str:
    """The job id of a dashboard job URL as Chromium sent it, after checking its path is untouched."""
    parts = urlsplit(url)
    path = f"/queues/default/{KEY}/job/" + (f"actions/{action}/" if action else "")
    assert parts.path == path, url
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert list(query) == ["id"] and len(query["id"]) == 1, url
    return query["id"][0]


def test_path_trick_ids_retried_and_removed_by_clicks_change_only_their_job(
    page: Any, live_site: LiveSite, tricks: dict[str, Any]
) -> None:
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    client = redis.Redis.from_url(live_site.redis_url)
    try:
        wait_until_listed(page, live_site, KEY, seconds=40)  # background discovery lists it
        before = snapshot(client)
        waiting = [job.encode() for job in reversed(WAITING)]  # LPUSHed: newest first
        assert client.lrange(f"{KEY}:wait", 0, -1) == waiting

        page.goto(f"{live_site.url}/queues/default/{KEY}/?state=failed")
        page.wait_for_selector('#job-list[data-list-state="failed"]')
        assert page.locator("tr.job-row").count() == len(PATH_TRICKS)
        retried: list[str] = []
        for job_id in ("../../actions/drain/", "a/../../x"):
            button = row(page, job_id).locator("button", has_text="Retry")
            with page.expect_request(lambda r: r.method == "POST") as posted:
                button.click()
            request = posted.value
            assert sent_id(request.url, "retry") == job_id
            response = request.response()
            assert response is not None and response.status == 200
            row(page, job_id).wait_for(state="detached")  # the toast came, and the list refreshed
            toast = page.locator("#bullmq-toasts .toast").first  # the newest
            assert toast.get_attribute("data-status") == "200"
            assert "moved from failed to waiting" in toast.inner_text()
            retried.insert(0, job_id)

            # Exactly that job moved to wait; w1..w3 were not drained.
            assert client.lrange(f"{KEY}:wait", 0, -1) == [*(j.encode() for j in retried), *waiting]
            failed = [m.decode() for m in client.zrange(f"{KEY}:failed", 0, -1)]
            assert failed == [j for j in PATH_TRICKS if j not in retried]
        page.screenshot(path=str(ARTIFACTS / "path-tricks-retried.png"), full_page=True)

        # Remove from the job page of another trick id.
        target = "x?y#z"
        row(page, target).locator("td.id a").click()
        page.wait_for_selector("#job-actions")
        assert sent_id(page.url, None) == target
        assert page.locator("h1 .subtitle").inner_text() == f"#{target}"
        with page.expect_request(lambda r: r.method == "POST") as posted:
            page.locator("#job-actions button", has_text="Remove").click()
            confirm_in_page(page)
        assert sent_id(posted.value.url, "remove") == target
        page.wait_for_url(f"{live_site.url}/queues/default/{KEY}/")
        assert f"job {target} with its logs" in page.confirmations[-1]
        assert page.dialogs == []

        assert not client.exists(f"{KEY}:{target}")
        failed = [m.decode() for m in client.zrange(f"{KEY}:failed", 0, -1)]
        assert failed == [j for j in PATH_TRICKS if j not in (*retried, target)]
        assert client.lrange(f"{KEY}:wait", 0, -1) == [*(j.encode() for j in retried), *waiting]
        after = snapshot(client)
        trick_keys = {f"{KEY}:{j}".encode() for j in (*retried, target)}
        queue_keys = {f"{KEY}:{name}".encode() for name in ("wait", "failed", "events", "marker")}
        assert changed(before, after) <= trick_keys | queue_keys
        assert before.keys() - after.keys() == {f"{KEY}:{target}".encode()}
        for job_id in [*PATH_TRICKS, *WAITING]:
            if job_id not in (*retried, target):
                assert after[f"{KEY}:{job_id}".encode()] == before[f"{KEY}:{job_id}".encode()], job_id
    finally:
        client.close()

    posts = [urlsplit(url).path for method, url in requests if method == "POST"]
    assert posts == [
        f"/queues/default/{KEY}/job/actions/{action}/" for action in ("retry", "retry", "remove")
    ]
    assert not any("/actions/drain/" in urlsplit(url).path for _method, url in requests)
