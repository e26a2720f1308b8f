"""What each kind of live page makes the watcher follow and which groups it listens to."""

from __future__ import annotations

from dashboard.live import groups
from dashboard.live.hub import LiveView, ViewKind
from queues.events import Interest, JobRef
from queues.models import QueueRef

EMAIL = QueueRef("default", "bull", "email")


def test_the_overview_follows_the_queues_of_its_page_only() -> None:
    page = (QueueRef("default", "bull", "a"), QueueRef("default", "bull", "b"))
    view = LiveView(ViewKind.OVERVIEW, queues=page)
    assert view.interest() == Interest(queues=page)
    assert LiveView(ViewKind.OVERVIEW).interest() == Interest()
    assert view.groups() == [groups.everyone_group(), groups.overview_group()]
    assert view.job is None


def test_a_queue_page_follows_its_queue() -> None:
    view = LiveView(ViewKind.QUEUE, EMAIL, state="failed", page=2, per_page=10)
    assert view.interest() == Interest(queues=(EMAIL,))
    assert view.groups() == [groups.everyone_group(), groups.queue_group(EMAIL)]
    assert view.job is None


def test_a_job_page_follows_its_job() -> None:
    view = LiveView(ViewKind.JOB, EMAIL, job_id="../7")
    job = JobRef(EMAIL, "../7")
    assert view.job == job
    assert view.interest() == Interest(jobs=(job,))
    assert view.groups() == [groups.everyone_group(), groups.job_group(job)]
