"""`manage.py queues` (issue 14, point 4): the table and --json against the API's queue list, failures
kept in their row or section, the live view, and the actions through the web's checks and audit log."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from bullmq import Worker
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from dashboard.terminal.queue_actions import Request, execute, plan
from dashboard.terminal.rendering import COUNTED
from queues.actions import Outcome, Progress, QueueWriter
from queues.counts import fetch_counts
from queues.models import QueueRef
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
ROOT = Path(__file__).resolve().parents[2]
CLI_USER = f"cli:{getpass.getuser()}"


@dataclass(frozen=True)
class Run:
    """What one `manage.py queues …` printed, and the CommandError that ended it (None: exit 0)."""

    out: str
    err: str
    error: CommandError | None


async def queues(*args: str) -> Run:
    """Run the command as `manage.py` would, in a thread of its own (it runs its own event loops)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        await asyncio.to_thread(call_command, "queues", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return Run(out.getvalue(), err.getvalue(), exc)
    return Run(out.getvalue(), err.getvalue(), None)


def table_rows(text: str) -> dict[str, list[str]]:
    """The table's rows by queue name: the cells after the name, as printed."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("│ "):
            name, *cells = (cell.strip() for cell in line.strip().strip("│").split("│"))
            rows[name] = cells
    return rows


async def fail(job: Any, token: str) -> None:
    raise RuntimeError(f"boom {job.id}")


async def failed_jobs(url: str, name: str, count: int, prefix: str = "bull") -> None:
    await add_jobs(url, name, [("send", {}, {}) for _ in range(count)], prefix=prefix)
    await process(url, name, fail, until=count, prefix=prefix)


async def last_audit() -> AuditEntry:
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    return entry


class TerminalInput(io.StringIO):
    """Standard input typed at a terminal."""

    def isatty(self) -> bool:
        return True


async def test_the_table_and_json_give_the_apis_numbers(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(
        redis_url,
        "email",
        [("send", {}, {}), ("later", {}, {"delay": 60_000}), ("vip", {}, {"priority": 3})],
    )
    await pause(redis_url, "email")
    await failed_jobs(redis_url, "reports", 3)
    await add_jobs(redis_url, "billing", [("invoice", {}, {}) for _ in range(2)], prefix="{tenant-a}")

    api = (await client.get(dashboard_url("api/queues/"))).json()["queues"]
    listed = await queues("--json")
    table = await queues()

    assert listed.error is None and table.error is None
    assert json.loads(listed.out) == {"queues": api, "connectionsDown": []}
    rows = table_rows(table.out)
    assert set(rows) == {"email", "reports", "billing"}
    for queue in api:
        cells = rows[queue["name"]]
        assert [int(cell.replace(",", "")) for cell in cells[: len(COUNTED)]] == [
            queue["counts"][state] for state in COUNTED
        ]
        assert cells[len(COUNTED)] == ("paused" if queue["paused"] else "")
    assert api[1]["counts"]["failed"] == 3 and api[1]["name"] == "reports"  # the data is what it seems
    assert "default · bull" in table.out and "default · {tenant-a}" in table.out


async def test_filters_connection_and_prefix(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "reports", [("send", {}, {})])
    await add_jobs(redis_url, "billing", [("invoice", {}, {})], prefix="{tenant-a}")

    def names(run: Run) -> list[str]:
        assert run.error is None
        return [queue["key"] for queue in json.loads(run.out)["queues"]]

    assert names(await queues("--json", "-q", "REP")) == ["bull:reports"]
    assert names(await queues("--json", "--prefix", "{tenant-a}")) == ["{tenant-a}:billing"]
    assert names(await queues("--json", "--connection", "default", "--filter", "bull:")) == [
        "bull:email",
        "bull:reports",
    ]
    unknown = await queues("--connection", "nope")
    assert unknown.error is not None and "No connection nope; there are: default." in str(unknown.error)


async def test_a_broken_queue_breaks_its_row_and_a_down_connection_its_section(
    redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "beta", [("send", {}, {})])
    await redis_client.set("bull:beta:failed", "not a zset")
    connections = {
        "default": {"URL": redis_url},
        "down": {"URL": "redis://127.0.0.1:1/0", "CONNECT_TIMEOUT": 0.5},
    }
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, CONNECTIONS=connections)):
        reset_directories()
        table = await queues()
        listed = await queues("--json")
        only_default = await queues("--connection", "default")

    assert table.error is not None and "Connection down could not be read." in str(table.error)
    assert "Traceback" not in table.err
    assert "Connection down: Redis is unreachable:" in table.out
    rows = table_rows(table.out)
    assert rows["email"][:2] == ["1", "0"]
    assert rows["beta"][0] == "1" and rows["beta"][COUNTED.index("failed")] == "?"
    assert "broken: bull:beta:failed is a string, not what BullMQ keeps" in table.out  # then wrapped

    assert listed.error is not None
    body = json.loads(listed.out)
    (down,) = body["connectionsDown"]
    assert down["connection"] == "down" and down["problem"].startswith("Redis is unreachable:")
    beta = next(queue for queue in body["queues"] if queue["name"] == "beta")
    assert beta["problem"] == "bull:beta:failed is a string, not what BullMQ keeps there"
    assert beta["counts"]["failed"] is None and beta["counts"]["waiting"] == 1  # unknown is not 0
    assert only_default.error is None and "email" in table_rows(only_default.out)


async def test_pause_and_resume_go_through_the_actions_layer_and_are_audited(
    redis_url: str, redis_client: Redis, superuser: Any
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])

    paused = await queues("pause", "email")
    assert paused.error is None and "Queue email paused." in paused.out
    ((counts,),) = [await fetch_counts(redis_client, [EMAIL])]
    assert counts.paused is True
    entry = await last_audit()
    assert (entry.action, entry.result, entry.queue, entry.connection) == (
        "pause",
        "done",
        "bull:email",
        "default",
    )
    assert (entry.username, entry.user_id, entry.params, entry.remote_addr) == (
        CLI_USER,
        None,
        {"via": "cli"},
        None,
    )

    resumed = await queues("resume", "default/bull:email", "--user", "root")
    assert resumed.error is None and "Queue email resumed." in resumed.out
    (counts,) = await fetch_counts(redis_client, [EMAIL])
    assert counts.paused is False
    entry = await last_audit()
    assert (entry.action, entry.result, entry.username, entry.user_id) == (
        "resume",
        "done",
        "root",
        superuser.pk,
    )
    assert entry.params == {"via": "cli"} and entry.message == "Queue email resumed."
    assert await AuditEntry.objects.acount() == 2


async def test_clean_with_grace_removes_only_older_jobs(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"old-{i}"}) for i in range(2)])
    await process(redis_url, "email", fail, until=2)
    await asyncio.sleep(3)  # the old jobs are 3 s old when the new ones fail
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"new-{i}"}) for i in range(2)])
    await process(redis_url, "email", fail, until=2)

    run = await queues("clean", "email", "--state", "failed", "--grace", "2s", "--yes")

    assert run.error is None, run.error
    assert "About 2 failed jobs of email, older than 2 seconds, will be removed" in run.out
    assert "Removed 2 failed jobs from email." in run.out
    assert sorted(await redis_client.zrange("bull:email:failed", 0, -1)) == [b"new-0", b"new-1"]
    entry = await last_audit()
    assert (entry.action, entry.result, entry.count) == ("clean", "done", 2)
    assert sorted(entry.job_ids) == ["old-0", "old-1"]
    assert entry.params == {"state": "failed", "grace": 2000, "limit": 0, "via": "cli"}


async def test_without_yes_a_bulk_action_asks_and_changes_nothing_unless_confirmed(
    redis_url: str, redis_client: Redis, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await failed_jobs(redis_url, "email", 3)

    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: no one to ask
    piped = await queues("retry-failed", "email")
    assert piped.error is not None and "stdin is not a terminal (add --yes)" in str(piped.error)
    assert "Queue email: all 3 failed jobs, of any age, move back to waiting." in piped.out

    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    declined = await queues("retry-failed", "email")
    assert declined.error is not None and str(declined.error) == "Nothing was changed."
    assert "Type y to go on:" in declined.out

    assert await redis_client.zcard("bull:email:failed") == 3
    assert await AuditEntry.objects.acount() == 0

    monkeypatch.setattr(sys, "stdin", TerminalInput("y\n"))
    confirmed = await queues("retry-failed", "email")
    assert confirmed.error is None and "Moved 3 failed jobs of email to waiting." in confirmed.out
    assert await redis_client.zcard("bull:email:failed") == 0
    assert await redis_client.llen("bull:email:wait") == 3
    entry = await last_audit()
    assert (entry.action, entry.result, entry.count, entry.params) == (
        "retry_all",
        "done",
        3,
        {"state": "failed", "via": "cli"},
    )


async def test_read_only_refuses_and_the_refusal_is_audited(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY=True)):
        run = await queues("pause", "email")
    assert run.error is not None and str(run.error) == "bull:email is read-only here."
    assert await redis_client.hget("bull:email:meta", "paused") is None
    entry = await last_audit()
    assert (entry.action, entry.result, entry.username, entry.params) == (
        "pause",
        "refused",
        CLI_USER,
        {"status": 403, "via": "cli"},
    )


async def test_a_user_without_the_permission_is_refused_and_audited_like_the_web(
    redis_url: str, redis_client: Redis, staff_user: Any, django_user_model: Any
) -> None:
    await failed_jobs(redis_url, "email", 1)

    refused = await queues("retry-failed", "email", "--user", "operator", "--yes")
    assert refused.error is not None
    assert str(refused.error) == "You may not use “Retry all failed” on bull:email."
    assert await redis_client.zcard("bull:email:failed") == 1
    entry = await last_audit()
    assert (entry.action, entry.result, entry.username, entry.user_id) == (
        "retry_all",
        "refused",
        "operator",
        staff_user.pk,
    )

    outsider = await django_user_model.objects.acreate_user("visitor", password="pw")  # not staff
    hidden = await queues("pause", "email", "--user", "visitor")
    assert hidden.error is not None and str(hidden.error) == "No queue bull:email on connection default."
    assert (await last_audit()).user_id == outsider.pk

    nobody = await queues("pause", "email", "--user", "nobody")
    assert nobody.error is not None and str(nobody.error) == "No user nobody."
    unknown = await queues("pause", "nope")
    assert unknown.error is not None
    assert str(unknown.error) == "No queue nope. Queues: default/bull:email."
    assert await AuditEntry.objects.acount() == 2


async def test_an_interrupted_action_runs_to_its_end_and_completes_its_entry(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    release = asyncio.Event()
    try:
        checked = await plan(Request("pause", "email", {}))

        async def slow_pause(queue_writer: QueueWriter, progress: Progress) -> Outcome:
            await release.wait()
            return await queue_writer.pause()

        checked = replace(checked, prepared=replace(checked.prepared, work=slow_pause))
        said: list[int] = []
        task = asyncio.ensure_future(execute(checked, said.append))
        await asyncio.sleep(0.2)
        task.cancel()  # what asyncio.run does on Ctrl-C
        await asyncio.sleep(0.2)
        assert not task.done() and said == [-1]
        assert (await last_audit()).result == "started"
        release.set()
        answer = await task
    finally:
        await close_dashboard()
    assert answer.ok and str(answer.message) == "Queue email paused."
    entry = await last_audit()
    assert (entry.action, entry.result, entry.message) == ("pause", "done", "Queue email paused.")
    assert await redis_client.hget("bull:email:meta", "paused") == b"1"


async def test_hostile_queue_and_job_names_are_shown_as_written(redis_url: str) -> None:
    await add_jobs(redis_url, "[bold red]evil[/]\x1b[2J\u202e", [("send", {}, {})])
    await add_jobs(redis_url, "email", [("[link=http://x]click[/link]\x07", {}, {"jobId": "[b]j[/b]"})])
    release = asyncio.Event()

    async def hold(job: Any, token: str) -> None:
        await job.updateProgress(40)
        await release.wait()

    # Workers name their Redis connection after the queue, and Redis refuses control characters
    # there: the active job is in a queue with a plain name.
    async with running_worker(redis_url, "email", hold):
        await wait_for_active(redis_url, "email")
        table = await queues()
        live = await queues("--watch", "--interval", "0.2", "--iterations", "2")
        release.set()

    for run in (table, live):
        assert run.error is None
        assert "[bold red]evil[/]\\u001b[2J\\u202e" in run.out
        assert "\x1b" not in run.out and "\u202e" not in run.out and "\x07" not in run.out
    assert "[link=http://x]click[/link]\\u0007" in live.out and "[b]j[/b]" in live.out
    job_line = next(line for line in live.out.splitlines() if "[b]j[/b]" in line)
    assert "━" in job_line and "40%" in job_line
    assert "Completed/min" in live.out


@asynccontextmanager
async def running_worker(url: str, name: str, processor: Any) -> AsyncIterator[Worker]:
    worker = Worker(name, processor, {"connection": url, "autorun": False})
    runner = asyncio.ensure_future(worker.run())
    try:
        yield worker
    finally:
        await worker.close()
        await runner


async def wait_for_active(url: str, name: str) -> None:
    client = Redis.from_url(url)
    try:
        for _ in range(100):
            if await client.llen(f"bull:{name}:active"):
                return
            await asyncio.sleep(0.05)
        pytest.fail("the worker took no job")
    finally:
        await client.aclose()


@pytest.mark.standalone_only
async def test_watch_refreshes_in_place_until_ctrl_c(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "tests-only-secret-key",
        "REDIS_URL": redis_url,
        "DASHBOARD_LIVE": "0",
        "TTY_COMPATIBLE": "1",  # rich draws every frame, as on a terminal
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "queues",
        "--watch",
        "--interval",
        "0.2",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(30):
            while seen.count(b"BullMQ queues at") < 3:
                seen += await process.stdout.read(4096) or pytest.fail(f"it stopped: {seen!r}")
    finally:
        process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    frames = (seen + rest).decode()
    assert "\x1b[2K\x1b[1A" in frames  # each frame erases the one before: refreshed in place
    assert "│ email " in frames and frames.rstrip().endswith("\x1b[?25h")  # the cursor is back
